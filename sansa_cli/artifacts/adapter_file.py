"""Self-describing adapter files: one ``.safetensors`` file per trained adapter.

Tensors are keyed by stock SAM2 module paths (``image_encoder.trunk.blocks.8.adapter...``) and may
be stored in fp32, fp16 or bf16. String metadata carries the format version, the strategy name,
its full config as JSON, the base SAM2 name, the base config overrides as JSON, the SHA-256 of
the base checkpoint and the base's architecture fingerprint
(:func:`sansa_cli.core.sam2_base.architecture_fingerprint`); any other string metadata lands in
:attr:`AdapterInfo.extra`.

A file is data: its base overrides may name only the SAM2 settings sansa writes
(:func:`sansa_cli.core.sam2_base.check_file_settings`, when the metadata is read), its
weights must be finite, and it loads only into a SAM2 of the recorded architecture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sansa_cli.core.choices import STORAGE_DTYPES
from sansa_cli.core.input_profile import InputProfile, infer_profile, profile_from_json
from sansa_cli.core.sam2_base import check_file_settings
from sansa_cli.errors import AdapterFileError, MissingFileError, UserInputError

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
    base_fingerprint: str = ""  # architecture_fingerprint of the base; "" in older files
    input_profile: InputProfile | None = None  # how its adapters expect inputs; None in older

    def profile(self) -> tuple[InputProfile, str]:
        """The input profile and where it comes from (recorded, or inferred for older files)."""
        if self.input_profile is not None:
            return self.input_profile, "recorded"
        return infer_profile(self.extra)

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
            "base_fingerprint": self.base_fingerprint,
            "input_profile": self.input_profile.to_json() if self.input_profile else "",
        }


def save_adapter_file(path: str | Path, tensors: dict, info: AdapterInfo,
                      dtype: str | None = None) -> Path:
    """Write ``tensors`` and ``info`` atomically to ``path``.

    ``dtype`` (``fp32``, ``fp16``, ``bf16``) converts floating-point tensors for storage; None
    keeps them as they are. Loading casts back to the model's dtype.
    """
    import torch
    from safetensors.torch import save_file

    from sansa_cli.artifacts.files import atomic_path

    if dtype is not None and dtype not in STORAGE_DTYPES:
        raise UserInputError(
            f"storage dtype {dtype!r} is unknown; use one of {', '.join(STORAGE_DTYPES)}"
        )
    target = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype)
    path = Path(path)
    cpu = {}
    for key, value in tensors.items():
        value = value.detach().to("cpu")
        if target is not None and value.is_floating_point():
            value = value.to(target)
        cpu[key] = value.contiguous()
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=info.metadata())
    return path


def _open_error(path: Path, exc: Exception) -> AdapterFileError:
    return AdapterFileError(
        f"adapter file {path} is not a readable safetensors file ({exc}); "
        "it is corrupt or truncated: export or download it again"
    )


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
        raise _open_error(path, exc) from exc
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
        fingerprint = meta.get("base_fingerprint", "")
        if not isinstance(config, dict) or not isinstance(overrides, dict):
            raise ValueError("config and base_overrides must be JSON objects")
        if fingerprint and not _is_sha256(fingerprint):
            raise ValueError(f"base_fingerprint {fingerprint[:80]!r} is not a SHA-256")
        reserved = AdapterInfo("", {}, "").metadata()
        info = AdapterInfo(
            strategy=meta["strategy"], config=config, base_model=meta["base_model"],
            base_checkpoint_sha256=meta.get("base_checkpoint_sha256", ""),
            base_overrides=overrides, base_fingerprint=fingerprint,
            extra={k: v for k, v in meta.items() if k not in reserved},
        )
    except (KeyError, ValueError) as exc:
        raise AdapterFileError(
            f"adapter file {path} has damaged metadata ({type(exc).__name__}: {exc}); "
            "export it again"
        ) from exc
    info.base_overrides = check_file_settings(info.base_overrides, f"adapter file {path}")
    if meta.get("input_profile"):
        try:
            info.input_profile = profile_from_json(meta["input_profile"], f"adapter file {path}")
        except UserInputError as exc:
            raise AdapterFileError(str(exc)) from exc
    return info


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def tensor_summary(path: str | Path) -> dict[str, Any]:
    """Tensor count, parameter count and storage dtypes from the file header (no tensor data)."""
    import math

    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            slices = [f.get_slice(k) for k in f.keys()]
            shapes = [s.get_shape() for s in slices]
            dtypes = sorted({s.get_dtype() for s in slices})
    except Exception as exc:
        raise _open_error(Path(path), exc) from exc
    return {"tensors": len(shapes), "parameters": sum(math.prod(s) for s in shapes),
            "dtypes": dtypes, "bytes": Path(path).stat().st_size}


def load_adapter_tensors(path: str | Path) -> dict:
    """The file's tensors; a NaN or infinite value is an :class:`AdapterFileError`."""
    from safetensors.torch import load_file

    from sansa_cli.artifacts.weights import check_finite

    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise _open_error(Path(path), exc) from exc
    check_finite(tensors, path, "adapter file", AdapterFileError,
                 "the training diverged or the file is damaged: export it again from a good "
                 "checkpoint")
    return tensors


def make_strategy(name: str, config: dict[str, Any], source: str):
    """The registered strategy ``name`` with the stored ``config``; a config the strategy
    rejects is an :class:`AdapterFileError` naming ``source``."""
    from sansa_cli import registry

    cls = registry.load("adapter", name)
    config = cls.upgrade_config(dict(config))
    known = cls.option_names()
    unknown = sorted(set(config) - known)
    if unknown:
        raise AdapterFileError(
            f"{source} sets {', '.join(unknown)}, unknown to strategy '{name}' "
            f"(its options: {', '.join(sorted(known))}); upgrade sansa or the plugin"
        )
    try:
        return cls(cls.Config(**config))
    except (UserInputError, TypeError) as exc:
        raise AdapterFileError(f"{source} has an invalid '{name}' config: {exc}") from exc


def attach_adapters(sam, path: str | Path, info: AdapterInfo, base_checkpoint: str | Path | None,
                    allow_base_mismatch: bool = False, base_model: str | None = None):
    """Apply the file's strategy to ``sam`` and load its weights, checking everything.

    ``sam`` is the SAM2 as built, before any strategy is attached. Returns the strategy
    instance and its parameters. Checks, each an :class:`AdapterFileError` naming it:

    - the architecture: when the file records a base fingerprint, ``sam`` must have the same
      (:func:`~sansa_cli.core.sam2_base.architecture_fingerprint`), whatever ``--sam2`` was;
      ``allow_base_mismatch`` does not lift this;
    - the base model name (``base_model``, a stock name given by the user) and the base
      checkpoint hash (when the file records one): errors unless ``allow_base_mismatch``;
    - missing or unexpected tensors, wrong shapes, NaN or infinite weights.
    """
    check_architecture(sam, path, info)
    if base_model and base_model != info.base_model and not allow_base_mismatch:
        raise AdapterFileError(
            f"adapter file {path} was trained on {info.base_model}, but the model is {base_model}; "
            "drop --sam2 (the file's base model is the default) or pass --allow-base-mismatch"
        )
    if base_checkpoint is not None and info.base_checkpoint_sha256 and not allow_base_mismatch:
        check_base_checkpoint(path, info, base_checkpoint)
    strategy = make_strategy(info.strategy, info.config, f"adapter file {path}")
    trainable = apply_to(sam, strategy, f"adapter file {path} (made for {info.base_model})")
    load_into(sam, strategy, trainable, load_adapter_tensors(path), path, info.base_model)
    return strategy, trainable


def check_architecture(sam, path: str | Path, info: AdapterInfo) -> None:
    """Refuse ``sam`` (as built, no strategy yet) if its architecture fingerprint differs from
    the one ``info`` records; files without one (older sansa) are not checked here."""
    from sansa_cli.core.sam2_base import architecture_fingerprint

    if not info.base_fingerprint:
        return
    found = architecture_fingerprint(sam)
    if found != info.base_fingerprint:
        raise AdapterFileError(
            f"adapter file {path} was made for a SAM2 whose architecture differs (fingerprint "
            f"{info.base_fingerprint[:12]}... vs {found[:12]}... here): its base is "
            f"{info.base_model}; build that SAM2 (drop --sam2 and settings that change layers) "
            "or use an adapter file made for this one; --allow-base-mismatch allows another "
            "checkpoint, not another architecture")


def check_base_checkpoint(path: str | Path, info: AdapterInfo, base_checkpoint: str | Path) -> None:
    """Refuse ``base_checkpoint`` if its SHA-256 differs from the one ``info`` records."""
    from sansa_cli.artifacts.hashing import sha256_file

    found = sha256_file(base_checkpoint)
    if found != info.base_checkpoint_sha256:
        raise AdapterFileError(
            f"adapter file {path} was trained on a base checkpoint with SHA-256 "
            f"{info.base_checkpoint_sha256[:12]}..., but {base_checkpoint} has "
            f"{found[:12]}...; "
            "use the matching checkpoint or pass --allow-base-mismatch"
        )


def apply_to(sam, strategy, source: str) -> dict:
    """:func:`apply_strategy`, with a strategy that does not fit this model blamed on ``source``."""
    from sansa_cli.adapters.base import apply_strategy

    try:
        return apply_strategy(sam, strategy)
    except UserInputError as exc:
        raise AdapterFileError(f"{source} does not fit this SAM2: {exc}; check --sam2") from exc


def load_into(sam, strategy, trainable: dict, tensors: dict, path, base_model: str) -> None:
    """Copy ``tensors`` into ``trainable`` after checking names and shapes."""
    import torch

    missing = sorted(set(trainable) - set(tensors))
    unexpected = sorted(set(tensors) - set(trainable))
    if missing or unexpected:
        raise AdapterFileError(
            f"adapter file {path} does not fit this SAM2 with '{strategy.name}' "
            f"({strategy.config_json()}): expected {len(trainable)} tensors, found {len(tensors)}; "
            f"{len(missing)} missing {missing[:2]}, {len(unexpected)} unexpected {unexpected[:2]}; "
            f"the file was made for {base_model}: check --sam2"
        )
    wrong = [k for k, p in trainable.items() if tuple(tensors[k].shape) != tuple(p.shape)]
    if wrong:
        raise AdapterFileError(_shape_message(sam, strategy, wrong, tensors, trainable, path,
                                              base_model))
    with torch.no_grad():
        for key, param in trainable.items():
            param.copy_(tensors[key].to(param.dtype))


def _shape_message(sam, strategy, wrong, tensors, trainable, path, base_model: str) -> str:
    """Name the config the stored shapes imply when it explains every wrong shape (e.g. another
    bottleneck or rank); otherwise the file was made for another SAM2 size."""
    hints = [(strategy.shape_hint(k, tuple(tensors[k].shape), sam),
              strategy.shape_hint(k, tuple(trainable[k].shape), sam)) for k in wrong]
    key = wrong[0]
    found, expected = tuple(tensors[key].shape), tuple(trainable[key].shape)
    if all(f and e and f != e for f, e in hints):
        return (f"adapter tensor {key} in {path} has shape {found}, the model expects "
                f"{expected}: the stored tensors fit {hints[0][0]}, but the file's "
                f"'{strategy.name}' config {strategy.config_json()} gives {hints[0][1]}; the "
                "file is inconsistent: export it again")
    return (f"{len(wrong)} adapter tensors in {path} have the wrong shape, e.g. {key} is "
            f"{found}, the model expects {expected}: the file was made for another SAM2 size "
            f"({base_model}); check --sam2")


def describe(path: str | Path) -> str:
    """Human-readable metadata and counts of an adapter file (no tensor data is read)."""
    info = read_adapter_info(path)
    summary = tensor_summary(path)
    profile, how = info.profile()
    lines = [
        f"file              {path}",
        f"strategy          {info.strategy}",
        f"config            {json.dumps(info.config, sort_keys=True)}",
        f"base model        {info.base_model}",
        f"base checkpoint   {info.base_checkpoint_sha256 or '(not recorded)'}",
        f"base overrides    {json.dumps(info.base_overrides, sort_keys=True)}",
        f"base architecture {info.base_fingerprint or '(not recorded)'}",
        f"input profile     {profile.describe()} ({how})",
        f"parameters        {summary['parameters']:,} in {summary['tensors']} tensors "
        f"({', '.join(summary['dtypes'])}, {summary['bytes'] / 1e6:.1f} MB)",
    ]
    lines += [f"{key:<17} {value}" for key, value in sorted(info.extra.items())]
    return "\n".join(lines)

