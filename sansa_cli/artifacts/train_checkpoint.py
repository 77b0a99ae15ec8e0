"""Training checkpoints of ``sansa train``, read safely, and their export to adapter files.

A checkpoint is a ``torch.save`` dict (format ``sansa-train-checkpoint``) holding the strategy,
its config, the base model and its settings, the base checkpoint's hash and the adapter tensors
(plus optimizer and schedule state for resuming). It is always read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path

from sansa_cli.artifacts.adapter_file import (AdapterInfo, apply_to, load_into, make_strategy,
                                    save_adapter_file)
from sansa_cli.errors import AdapterFileError, MissingFileError, UserInputError

TRAIN_FORMAT = "sansa-train-checkpoint"
TRAIN_VERSION = 1
TRAIN_KEYS = ("strategy", "strategy_config", "base_model", "adapter")


def unpickle_reason(exc: Exception) -> str:
    """A short reason for a failed ``torch.load(weights_only=True)`` (torch's text is long)."""
    import re

    text = str(exc)
    match = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if match:
        return f"it holds {match[1]}, which safe loading does not allow"
    if "Weights only load failed" in text:
        return "it holds objects safe loading does not allow"
    first = (text.strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:160]}"


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
    """Load a training checkpoint with ``weights_only=True`` and check its format."""
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = unpickle_reason(exc)
        hint = ("it looks like an official SANSA checkpoint: use --from-official"
                if "argparse.Namespace" in reason else
                "it is corrupt, truncated or not a sansa training checkpoint")
        raise AdapterFileError(
            f"training checkpoint {path} cannot be read safely ({reason}); {hint}"
        ) from exc
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
    return blob


def export_training_checkpoint(source: str | Path, out: str | Path, best: bool = False,
                               dtype: str | None = None, merge_lora: bool = False,
                               sam2_checkpoint: str | Path | None = None) -> Path:
    """Write the adapter of a training run (``latest.pt``, or ``best.pt``) to ``out``.

    ``merge_lora`` folds a LoRA adapter into the base weights it was trained on and writes
    them as a ``qkv``-strategy file (plain SAM2 tensors of the adapted layers).
    """
    path = find_training_checkpoint(source, best)
    blob = read_training_checkpoint(path)
    info = AdapterInfo(
        strategy=blob["strategy"], config=dict(blob["strategy_config"]),
        base_model=blob["base_model"],
        base_checkpoint_sha256=blob.get("base_checkpoint_sha256", "") or "",
        base_overrides=dict(blob.get("base_overrides") or {}),
        extra={"source": path.name, "step": str(blob.get("step", ""))},
    )
    strategy = make_strategy(info.strategy, info.config, f"training checkpoint {path}")
    info.config = json.loads(strategy.config_json())  # the full config, defaults included
    tensors = blob["adapter"]
    if merge_lora:
        tensors, info = _merge_lora(strategy, tensors, info, path, sam2_checkpoint)
    return save_adapter_file(out, tensors, info, dtype)


def _merge_lora(strategy, tensors: dict, info: AdapterInfo, path: Path, explicit):
    from sansa_cli.core.sam2_base import build_sam2, load_checkpoint, resolve_base
    from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
    from sansa_cli.artifacts.files import sha256_file

    if not hasattr(strategy, "merge"):
        raise UserInputError(f"--merge-lora needs a LoRA adapter; {path} holds '{info.strategy}'")
    spec = resolve_base(info.base_model, info.base_overrides)
    ckpt = sam2_checkpoint(spec, explicit)
    found = sha256_file(ckpt)
    if info.base_checkpoint_sha256 and found != info.base_checkpoint_sha256:
        raise AdapterFileError(
            f"{path} was trained on a base checkpoint with SHA-256 "
            f"{info.base_checkpoint_sha256[:12]}..., but {ckpt} has {found[:12]}...; merging "
            "needs the same base: pass it with --sam2-checkpoint"
        )
    sam = build_sam2(spec, "cpu")
    load_checkpoint(sam, ckpt)
    trainable = apply_to(sam, strategy, f"training checkpoint {path}")
    load_into(sam, strategy, trainable, tensors, path, info.base_model)
    merged = strategy.merge(sam)
    config = {"stages": list(strategy.config.stages), "modules": list(strategy.config.targets)}
    extra = {**info.extra, "merged_from": f"lora {strategy.config_json()}"}
    return merged, AdapterInfo("qkv", config, info.base_model, found, info.base_overrides, extra)
