"""Training checkpoints of ``sansa train``: written, read safely, restored, exported.

A checkpoint is a ``torch.save`` dict (format ``sansa-train-checkpoint``) holding the strategy,
its config, the base model and its settings, the base checkpoint's hash and the adapter tensors,
plus the optimizer, schedule, scaler, step and RNG state for resuming. It is written atomically
under ``RUN_DIR/checkpoints/{latest,best}.pt`` and always read with
``torch.load(weights_only=True)`` (:func:`sansa_cli.artifacts.weights.load_torch_file`); its base
settings must be ones sansa writes and its adapter weights finite. ``sansa export-adapters`` turns
it into an adapter file that records the base's architecture fingerprint.
"""

from __future__ import annotations

import random
from pathlib import Path

from sansa_cli.artifacts.adapter_file import (
    AdapterInfo,
    make_strategy,
    save_adapter_file,
)
from sansa_cli.artifacts.files import atomic_path
from sansa_cli.core.sam2_base import check_file_settings
from sansa_cli.core.input_profile import SANSA_TRAINING
from sansa_cli.errors import AdapterFileError, MissingFileError, UserInputError

TRAIN_FORMAT = "sansa-train-checkpoint"
TRAIN_VERSION = 1
TRAIN_KEYS = ("strategy", "strategy_config", "base_model", "adapter")


def save_training_checkpoint(path: Path, *, strategy, trainable: dict, optimizer, scheduler,
                             scaler, step: int, best: float | None, base: dict,
                             config: dict) -> None:
    """Write a checkpoint of a run at ``step`` (``base``: name, overrides, sha256, and optionally
    fingerprint: the base's architecture fingerprint)."""
    import torch

    blob = {
        "format": TRAIN_FORMAT, "version": TRAIN_VERSION,
        "strategy": strategy.name, "strategy_config": strategy.config_dict(),
        "base_model": base["name"], "base_overrides": base["overrides"],
        "base_checkpoint_sha256": base["sha256"],
        "base_fingerprint": base.get("fingerprint", ""),
        "adapter": {k: v.detach().to("cpu").clone() for k, v in trainable.items()},
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "step": step, "best": best, "config": config,
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def find_training_checkpoint(source: str | Path, best: bool = False) -> Path:
    """``source`` itself if a file, else ``source/checkpoints/{latest,best}.pt``."""
    source = Path(source)
    name = "best.pt" if best else "latest.pt"
    if source.is_file():
        return source
    for candidate in (source / "checkpoints" / name, source / name):
        if candidate.is_file():
            return candidate
    if not source.exists():
        raise MissingFileError(
            f"{source} does not exist; give a run directory or a checkpoint file"
        )
    raise MissingFileError(
        f"run directory {source} has no checkpoints/{name}; "
        + ("train with validation to get best.pt, or drop --best" if best else
           "give the checkpoint file itself")
    )


def read_training_checkpoint(path: str | Path) -> dict:
    """Load a training checkpoint safely and check its format, base settings and weights.

    Read with ``weights_only=True`` (nothing in the file runs); base overrides outside
    :data:`~sansa_cli.core.sam2_base.FILE_SETTING_TYPES` and NaN or infinite adapter weights are
    :class:`AdapterFileError`.
    """
    from sansa_cli.artifacts.weights import check_finite, load_torch_file

    blob = load_torch_file(path, "training checkpoint", AdapterFileError, _unreadable_fix)
    if not isinstance(blob, dict) or blob.get("format") != TRAIN_FORMAT:
        hint = ("; it looks like an official SANSA checkpoint: use --from-official"
                if isinstance(blob, dict) and "model" in blob and "args" in blob else "")
        raise AdapterFileError(f"{path} is not a sansa training checkpoint (no "
                               f"format '{TRAIN_FORMAT}'){hint}")
    if blob.get("version") != TRAIN_VERSION:
        raise AdapterFileError(
            f"training checkpoint {path} has version {blob.get('version')!r}; this sansa reads "
            f"version {TRAIN_VERSION}: upgrade sansa"
        )
    missing = [k for k in TRAIN_KEYS if k not in blob]
    if missing:
        raise AdapterFileError(f"training checkpoint {path} lacks {', '.join(missing)}; "
                               "it is damaged: use another checkpoint of the run")
    blob["base_overrides"] = check_file_settings(blob.get("base_overrides") or {},
                                                 f"training checkpoint {path}")
    if not isinstance(blob["adapter"], dict):
        raise AdapterFileError(f"training checkpoint {path} holds no adapter tensors; "
                               "it is damaged: use another checkpoint of the run")
    check_finite(blob["adapter"], path, "training checkpoint", AdapterFileError,
                 "the run diverged: export or resume from an earlier checkpoint (e.g. --best)")
    return blob


def _unreadable_fix(reason: str) -> str:
    if "argparse.Namespace" in reason:
        return "it looks like an official SANSA checkpoint: use --from-official"
    return "it is corrupt, truncated or not a sansa training checkpoint"


def restore_training_checkpoint(path: Path, *, trainable: dict, optimizer, scheduler,
                                scaler) -> dict:
    """Restore a run from ``path`` into the given objects; returns the checkpoint dict."""
    import torch

    blob = read_training_checkpoint(path)
    stored = blob["adapter"]
    if set(stored) != set(trainable):
        raise UserInputError(f"checkpoint {path} holds another adapter than this run builds; "
                             "resume with the run's own config.yaml")
    with torch.no_grad():
        for key, param in trainable.items():
            param.copy_(stored[key].to(param.device, param.dtype))
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    if scaler is not None and blob.get("scaler"):
        scaler.load_state_dict(blob["scaler"])
    torch.set_rng_state(blob["rng"]["torch"])
    random.setstate(_tuples(blob["rng"]["python"]))
    return blob


def _tuples(value):
    """random.setstate wants tuples where a round trip may have produced lists."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def export_training_checkpoint(source: str | Path, out: str | Path, best: bool = False,
                               dtype: str | None = None, merge: bool = False,
                               sam2_checkpoint: str | Path | None = None) -> Path:
    """Write the adapter of a training run (``latest.pt``, or ``best.pt``) to ``out``.

    ``merge`` folds the adapter into the base weights it was trained on (strategies that
    declare ``can_merge``, such as LoRA) and writes what the strategy's merge returns.
    """
    path = find_training_checkpoint(source, best)
    blob = read_training_checkpoint(path)
    info = AdapterInfo(
        strategy=blob["strategy"], config=dict(blob["strategy_config"]),
        base_model=blob["base_model"],
        base_checkpoint_sha256=blob.get("base_checkpoint_sha256", "") or "",
        base_overrides=dict(blob["base_overrides"]),
        extra={"source": path.name, "step": str(blob.get("step", ""))},
        input_profile=SANSA_TRAINING,  # sansa's training feeds every reference this way
    )
    strategy = make_strategy(info.strategy, info.config, f"training checkpoint {path}")
    info.config = strategy.config_dict()  # the full config, defaults included
    info.base_fingerprint = _fingerprint(blob, info, path)
    tensors = blob["adapter"]
    if merge:
        tensors, info = _merge(strategy, tensors, info, path, sam2_checkpoint)
    return save_adapter_file(out, tensors, info, dtype)


def _fingerprint(blob: dict, info: AdapterInfo, path: Path) -> str:
    """The base's architecture fingerprint: recorded by the run, else from its base model
    (built with random weights: the YAML of a YAML-defined base must still be in place)."""
    from sansa_cli.core.sam2_base import base_fingerprint

    recorded = blob.get("base_fingerprint")
    if isinstance(recorded, str) and len(recorded) == 64 and \
            all(c in "0123456789abcdef" for c in recorded):
        return recorded
    try:
        return base_fingerprint(info.base_model, info.base_overrides)
    except MissingFileError as exc:
        raise MissingFileError(f"{exc}; training checkpoint {path} names it as its base, and "
                               "exporting builds it to record its architecture") from exc


def _merge(strategy, tensors: dict, info: AdapterInfo, path: Path, explicit):
    from sansa_cli.artifacts.hashing import sha256_file
    from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
    from sansa_cli.core.assemble import base_spec, build_model

    if not strategy.can_merge:
        raise UserInputError(f"--merge-lora needs an adapter that can be merged (such as LoRA); "
                             f"{path} holds '{info.strategy}'")
    ckpt = sam2_checkpoint(base_spec(info.base_model, overrides=info.base_overrides), explicit)
    found = sha256_file(ckpt)
    if info.base_checkpoint_sha256 and found != info.base_checkpoint_sha256:
        raise AdapterFileError(
            f"{path} was trained on a base checkpoint with SHA-256 "
            f"{info.base_checkpoint_sha256[:12]}..., but {ckpt} has {found[:12]}...; merging "
            "needs the same base: pass it with --sam2-checkpoint"
        )
    built = build_model(info.base_model, checkpoint=ckpt, overrides=info.base_overrides,
                        strategy=strategy, strategy_tensors=tensors,
                        source=f"training checkpoint {path}")
    merged = strategy.merge(built.sam)
    extra = {**info.extra, "merged_from": f"{strategy.name} {strategy.config_json()}"}
    return merged.tensors, AdapterInfo(merged.strategy, merged.config, info.base_model, found,
                                       info.base_overrides, extra, info.base_fingerprint,
                                       info.input_profile)
