"""Self-describing adapter files: one ``.safetensors`` file per trained adapter.

Tensors are keyed by stock SAM2 module paths (``image_encoder.trunk.blocks.8.adapter...``).
String metadata carries the format version, the strategy name, its full config as JSON, the
base SAM2 name, the base config overrides as JSON and the SHA-256 of the base checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sansa_cli.errors import AdapterFileError, MissingFileError

FORMAT = "sansa-adapter"
FORMAT_VERSION = "1"


@dataclass
class AdapterInfo:
    """What an adapter file says about itself (read without loading tensors)."""

    strategy: str
    config: dict[str, Any]
    base_model: str
    base_checkpoint_sha256: str = ""
    base_overrides: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    def metadata(self) -> dict[str, str]:
        return {
            **self.extra,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "strategy": self.strategy,
            "config": json.dumps(self.config, sort_keys=True),
            "base_model": self.base_model,
            "base_checkpoint_sha256": self.base_checkpoint_sha256,
            "base_overrides": json.dumps(self.base_overrides, sort_keys=True),
        }


def save_adapter_file(path: str | Path, tensors: dict, info: AdapterInfo) -> Path:
    """Write ``tensors`` and ``info`` atomically to ``path``."""
    from safetensors.torch import save_file

    from sansa_cli.files import atomic_path

    path = Path(path)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=info.metadata())
    return path


def read_adapter_info(path: str | Path) -> AdapterInfo:
    """Read and validate the metadata of an adapter file without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"adapter file {path} does not exist; check --adapters")
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as exc:
        raise AdapterFileError(
            f"adapter file {path} is not a readable safetensors file ({exc}); "
            "it is corrupt or truncated: export or download it again"
        ) from exc
    if meta.get("format") != FORMAT:
        raise AdapterFileError(
            f"{path} is not a sansa adapter file (no '{FORMAT}' metadata); "
            "convert official checkpoints with `sansa export-adapters --from-official`"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise AdapterFileError(
            f"adapter file {path} has format version {meta.get('format_version')!r}; this sansa "
            f"reads version {FORMAT_VERSION}: upgrade sansa"
        )
    try:
        config = json.loads(meta["config"])
        overrides = json.loads(meta.get("base_overrides", "{}"))
        return AdapterInfo(
            strategy=meta["strategy"], config=config, base_model=meta["base_model"],
            base_checkpoint_sha256=meta.get("base_checkpoint_sha256", ""),
            base_overrides=overrides,
            extra={k: v for k, v in meta.items() if k not in AdapterInfo("", {}, "").metadata()},
        )
    except (KeyError, json.JSONDecodeError) as exc:
        raise AdapterFileError(f"adapter file {path} has damaged metadata ({exc})") from exc


def load_adapter_tensors(path: str | Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise AdapterFileError(
            f"adapter file {path} cannot be read ({exc}); it is corrupt or truncated"
        ) from exc


def attach_adapters(sam, path: str | Path, info: AdapterInfo, base_checkpoint: str | Path | None,
                    allow_base_mismatch: bool = False):
    """Apply the file's strategy to ``sam`` and load its weights, checking everything.

    Returns the strategy instance. Wrong base checkpoint (unless allowed), missing or unexpected
    tensors and wrong shapes are :class:`AdapterFileError` naming what was expected and found.
    """
    import dataclasses

    from sansa_cli import registry
    from sansa_cli.adapters.base import apply_strategy
    from sansa_cli.files import sha256_file

    if base_checkpoint is not None and info.base_checkpoint_sha256 and not allow_base_mismatch:
        found = sha256_file(base_checkpoint)
        if found != info.base_checkpoint_sha256:
            raise AdapterFileError(
                f"adapter file {path} was trained on a base checkpoint with SHA-256 "
                f"{info.base_checkpoint_sha256[:12]}..., but {base_checkpoint} has {found[:12]}...; "
                "use the matching checkpoint or pass --allow-base-mismatch"
            )
    cls = registry.load("adapter", info.strategy)
    known = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(info.config) - known)
    if unknown:
        raise AdapterFileError(
            f"adapter file {path} sets {', '.join(unknown)}, unknown to strategy '{info.strategy}'; "
            "upgrade sansa or the plugin"
        )
    strategy = cls(cls.Config(**info.config))
    trainable = apply_strategy(sam, strategy)
    tensors = load_adapter_tensors(path)
    missing = sorted(set(trainable) - set(tensors))
    unexpected = sorted(set(tensors) - set(trainable))
    if missing or unexpected:
        raise AdapterFileError(
            f"adapter file {path} does not fit {info.base_model} with {info.strategy}: "
            f"{len(missing)} missing tensors {missing[:3]}, {len(unexpected)} unexpected "
            f"{unexpected[:3]}; check --sam2 against the file's base model"
        )
    for key, param in trainable.items():
        value = tensors[key]
        if value.shape != param.shape:
            raise AdapterFileError(
                f"adapter tensor {key} in {path} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(param.shape)}; the file was made for another SAM2 size or ratio"
            )
        param.data.copy_(value.to(param.dtype))
    return strategy
