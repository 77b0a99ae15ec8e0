"""One training step's forward: the pseudo-reference chain of the paper.

An episode is one annotated reference and ``J`` unannotated targets of the same class. Targets
are segmented one after another; each target's *predicted* mask is written to memory, so earlier
targets are pseudo-references for later ones, and gradients flow through the whole chain.
"""

from __future__ import annotations

import torch
from torch import nn

from sansa_cli.core import pseudo_video as pv
from sansa_cli.train.losses import mask_loss


class EpisodeChain(nn.Module):
    """Wraps SAM2 so DistributedDataParallel sees one forward per step: episodes in, loss out."""

    def __init__(self, sam, loss: str):
        super().__init__()
        self.sam = sam
        self.loss = loss

    def forward(self, images, reference_mask, target, valid, prompt_coords=None,
                prompt_labels=None, prompt_count=None) -> torch.Tensor:
        """Per-episode loss [B] for images [B, 1+J, 3, S, S] (reference first), reference masks
        [B, 1, S, S] (prepared as inference prepares them) and target masks/valid pixels
        [B, J, S, S]. With ``prompt_count`` [B] > 0, that episode's reference is marked by the
        first ``count`` prompt points instead."""
        sam = self.sam
        batch, frames_per_episode = images.shape[:2]
        seq_len = frames_per_episode - 1
        frames = pv.encode_frames(sam, images.flatten(0, 1))  # episode-major order
        index = lambda f: [b * frames_per_episode + f for b in range(batch)]  # noqa: E731
        references = frames.select(index(0))
        if prompt_count is None or not bool((prompt_count > 0).any()):
            memory = pv.reference_memory(sam, references, mask=reference_mask)[0]
        else:
            memory = pv.FrameMemory.cat([
                pv.reference_memory(sam, references.select([b]), **(
                    {"mask": reference_mask[b:b + 1]} if count == 0 else
                    {"points": {"point_coords": prompt_coords[b:b + 1, :count],
                                "point_labels": prompt_labels[b:b + 1, :count]}}))[0]
                for b, count in enumerate(prompt_count.tolist())])
        previous: list[pv.FrameMemory] = []
        total = images.new_zeros(batch, dtype=torch.float32)
        for j in range(seq_len):
            target_frames = frames.select(index(1 + j))
            out = pv.segment_targets(sam, target_frames, [memory], previous, 1 + seq_len)
            logits = pv.upsample_logits(out.low_res_logits.float(), target.shape[-2:])[:, 0]
            total = total + mask_loss(self.loss, logits, target[:, j], valid[:, j])
            if j + 1 < seq_len:  # this prediction becomes a pseudo-reference
                previous.append(pv.encode_memory(sam, target_frames, out.low_res_logits,
                                                 out.object_score_logits, out.obj_ptr,
                                                 prompted=False))
        return total / seq_len
