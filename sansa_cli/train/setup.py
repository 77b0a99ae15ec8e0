"""Building what a run needs: the adapted SAM2, the training split, the optimizer and schedule."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch

from sansa_cli.errors import UserInputError
from sansa_cli.train.config import TrainConfig


@dataclass
class Parts:
    sam: object
    strategy: object
    trainable: dict
    base: dict  # name, overrides, sha256 (recorded in checkpoints and the adapter file)
    dataset: object
    steps_per_epoch: int
    total_steps: int
    episodes_per_epoch: int


def build_model(config: TrainConfig, ctx, device):
    """The frozen SAM2 with the strategy injected; only its parameters require grad."""
    from sansa_cli.adapters.base import build_strategy
    from sansa_cli.artifacts.hashing import sha256_file
    from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
    from sansa_cli.core import distributed
    from sansa_cli.core.assemble import base_spec
    from sansa_cli.core.assemble import build_model as assemble
    from sansa_cli.core.sam2_base import RELEASE_SETTINGS

    # The adapter file records the base's own settings; inference adds the video-predictor
    # settings to them, as every build does, so training and inference see the same SAM2.
    overrides = {} if config.object_score_head else dict(RELEASE_SETTINGS)
    if ctx.is_main:  # one process downloads; the others wait for the file
        sam2_checkpoint(base_spec(config.sam2, overrides=overrides), config.sam2_checkpoint)
    distributed.barrier()
    built = assemble(config.sam2, checkpoint=config.sam2_checkpoint, download=False,
                     overrides=overrides,
                     strategy=build_strategy(config.adapter, config.adapter_options),
                     device=device, seed=config.seed)  # identical adapter init everywhere
    base = {"name": config.sam2, "overrides": overrides, "sha256": sha256_file(built.checkpoint),
            "fingerprint": built.base_fingerprint}
    return built.sam, built.strategy, built.trainable, base


def frozen_mode(sam) -> None:
    """The frozen SAM2 runs as at inference (no dropout: a fixed function, so results do not
    depend on the number of processes); modules that own trainable weights train."""
    sam.eval()
    for module in sam.modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            module.train()


def epoch_plan(config: TrainConfig, dataset, world: int) -> tuple[int, int, int]:
    """(episodes per epoch, steps per epoch, total steps); sizes that cannot work are errors."""
    if config.batch_size % world:
        raise UserInputError(f"global batch size {config.batch_size} does not split over "
                             f"{world} processes; use a multiple of {world}")
    per_epoch = config.episodes_per_epoch or len(dataset.image_ids())
    steps_per_epoch = per_epoch // config.batch_size
    if steps_per_epoch < 1:
        raise UserInputError(f"an epoch of {per_epoch} episodes is smaller than the batch size "
                             f"{config.batch_size}; lower --batch-size")
    return per_epoch, steps_per_epoch, config.steps or config.epochs * steps_per_epoch


def build_parts(config: TrainConfig, ctx, device, dataset) -> Parts:
    """The model around the already checked training ``dataset`` (see ``train/preflight.py``)."""
    per_epoch, steps_per_epoch, total = epoch_plan(config, dataset, ctx.world)
    sam, strategy, trainable, base = build_model(config, ctx, device)
    return Parts(sam, strategy, trainable, base, dataset, steps_per_epoch, total, per_epoch)


def optimizer_and_schedule(config: TrainConfig, trainable: dict, total_steps: int):
    """AdamW and a per-step cosine schedule with optional linear warmup."""
    optimizer = torch.optim.AdamW(list(trainable.values()), lr=config.lr,
                                  weight_decay=config.weight_decay)
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def resolve_precision(config: TrainConfig, device) -> str:
    """The run's autocast precision (``auto``: see :func:`sansa_cli.core.device.resolve_precision`;
    an emulated bf16 on a CPU warns)."""
    from sansa_cli.core.device import resolve_precision as resolve

    return resolve(config.precision, device, lambda message: print(f"warning: {message}",
                                                                   file=sys.stderr))
