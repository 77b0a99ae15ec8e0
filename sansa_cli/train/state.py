"""Training checkpoints: the adapter, optimizer, schedule, step and RNG state of a run.

Saved with ``torch.save`` in a format ``torch.load(weights_only=True)`` reads back, atomically,
under ``RUN_DIR/checkpoints/{latest,best}.pt``; ``sansa export-adapters`` reads the same files.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from sansa_cli.artifacts.train_checkpoint import TRAIN_FORMAT, TRAIN_VERSION, read_training_checkpoint
from sansa_cli.errors import UserInputError
from sansa_cli.artifacts.files import atomic_path


def save_state(path: Path, *, strategy, trainable: dict, optimizer, scheduler, scaler, step: int,
               best: float | None, base: dict, config: dict) -> None:
    """Write a checkpoint of the run at ``step``."""
    blob = {
        "format": TRAIN_FORMAT, "version": TRAIN_VERSION,
        "strategy": strategy.name, "strategy_config": _plain(strategy.config),
        "base_model": base["name"], "base_overrides": base["overrides"],
        "base_checkpoint_sha256": base["sha256"],
        "adapter": {k: v.detach().to("cpu").clone() for k, v in trainable.items()},
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "step": step, "best": best, "config": config,
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_state(path: Path, *, trainable: dict, optimizer, scheduler, scaler) -> dict:
    """Restore a run from ``path`` into the given objects; returns the checkpoint dict."""
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


def _plain(config) -> dict:
    import dataclasses

    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}


def _tuples(value):
    """random.setstate wants tuples where a round trip may have produced lists."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
