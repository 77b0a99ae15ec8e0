"""Mask losses on target frames: BCE + Dice (the paper) or sigmoid focal + Dice (the release).

Logits and targets are [B, H, W]; ``valid`` marks pixels that count (ignore pixels do not).
Each loss is averaged per episode, then over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits, target, valid, smooth: float = 1.0):
    prob = torch.sigmoid(logits) * valid
    target = target * valid
    inter = (prob * target).flatten(1).sum(1)
    total = prob.flatten(1).sum(1) + target.flatten(1).sum(1)
    return 1 - (2 * inter + smooth) / (total + smooth)


def bce_loss(logits, target, valid):
    pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * valid
    return pixel.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)


def focal_loss(logits, target, valid, alpha: float = 0.25, gamma: float = 2.0):
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    pixel = weight * ce * (1 - p_t) ** gamma * valid
    return pixel.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)


def mask_loss(name: str, logits, target, valid):
    """Per-episode loss [B] for ``name`` in {'bce-dice', 'focal-dice'} (1:1 sums)."""
    first = bce_loss if name == "bce-dice" else focal_loss
    return first(logits, target, valid) + dice_loss(logits, target, valid)
