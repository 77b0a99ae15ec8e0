"""The few-shot pipeline cut into graphs that export to ONNX, each a thin module over sansa's
own pseudo-video functions (:mod:`sansa_cli.core.pseudo_video`).

Between graphs, features travel as image-like arrays [B, C, h, w], one per level of SAM2's
feature pyramid (``high_res_0``, ``high_res_1``: the decoder's high-resolution levels, already
through ``conv_s0``/``conv_s1``; ``features``: the top level). Positional encodings depend only
on the image size, so they are constants of the graphs that need them, not inputs.

- :class:`Encoder`: normalised images [B, 3, S, S] -> the levels;
- :class:`MaskReference`: levels + reference mask [B, 1, S, S] (0/1) -> memory, object pointer;
- :class:`PromptReference`: levels + SAM2 ``point_inputs`` of one reference -> memory, object
  pointer and the mask SAM2 drew;
- :class:`Condition`: memory attention of target features over K references' memories;
- :class:`Decoder`: memory-conditioned features + high-resolution levels -> the best mask's
  logits, its predicted IoU and the object-score logit.

All references sit in one temporal slot (frame 0) and the target is frame 1, as in
:func:`sansa_cli.core.pseudo_video.condition_on_memory`; :class:`Condition` writes that case
over tensor shapes instead of a loop over references, so K is a dynamic dimension.
"""

from __future__ import annotations

import torch
from sam2.modeling.sam2_utils import get_1d_sine_pe
from torch import nn

from sansa_cli.core import pseudo_video as pv


def level_names(levels: int) -> list[str]:
    """Names of the feature levels, high resolution first."""
    return [f"high_res_{i}" for i in range(levels - 1)] + ["features"]


def image_like(frames: pv.FrameFeatures) -> list[torch.Tensor]:
    """The frames' levels as images [B, C, h, w] (SAM2 keeps them flattened, (HW, B, C))."""
    batch = frames.batch
    return [x.permute(1, 2, 0).reshape(batch, x.size(2), h, w)
            for x, (h, w) in zip(frames.vision_feats, frames.feat_sizes)]


def _frames(levels: list[torch.Tensor], positions: list[torch.Tensor]) -> pv.FrameFeatures:
    """SAM2's flattened (HW, B, C) frames from image-like levels and constant positions."""
    batch = levels[-1].shape[0]
    return pv.FrameFeatures([x.flatten(2).permute(2, 0, 1) for x in levels],
                            [p.flatten(2).permute(2, 0, 1).expand(-1, batch, -1)
                             for p in positions],
                            [(x.shape[-2], x.shape[-1]) for x in levels])


class Encoder(nn.Module):
    """The (adapted) image encoder with its neck and the decoder's conv_s0/conv_s1."""

    def __init__(self, sam):
        super().__init__()
        self.sam = sam

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(image_like(pv.encode_frames(self.sam, image)))


class _WithPositions(nn.Module):
    def __init__(self, sam, positions: list[torch.Tensor]):
        super().__init__()
        self.sam = sam
        for i, pos in enumerate(positions):
            self.register_buffer(f"pos_{i}", pos[:1].clone())
        self.levels = len(positions)

    def frames(self, levels) -> pv.FrameFeatures:
        return _frames(list(levels), [getattr(self, f"pos_{i}") for i in range(self.levels)])


class MaskReference(_WithPositions):
    """A mask reference's memory: the mask is the frame's output (SAM2's mask-as-output)."""

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        *levels, mask = inputs
        memory, _ = pv.reference_memory(self.sam, self.frames(levels), mask=mask)
        return memory.features, memory.obj_ptr


class PromptReference(_WithPositions):
    """A prompted reference's memory: SAM2's decoder draws the mask from clicks or a box."""

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        *levels, coords, labels = inputs
        points = {"point_coords": coords, "point_labels": labels}
        memory, drawn = pv.reference_memory(self.sam, self.frames(levels), points=points)
        return memory.features, memory.obj_ptr, drawn


class Decoder(nn.Module):
    """SAM2's mask decoder on memory-conditioned features, keeping the best mask."""

    def __init__(self, sam):
        super().__init__()
        self.sam = sam

    def forward(self, conditioned: torch.Tensor, *high_res: torch.Tensor):
        # The top level of these frames is never read: the decoder takes ``conditioned``.
        levels = [*high_res, conditioned]
        frames = pv.FrameFeatures([x.flatten(2).permute(2, 0, 1) for x in levels], [],
                                  [(x.shape[-2], x.shape[-1]) for x in levels])
        out = pv.decode_target(self.sam, frames, conditioned)
        return out.low_res_logits, out.iou, out.object_score_logits


class Condition(nn.Module):
    """Memory attention of a batch of targets over the memories of K references.

    ``features`` [B, C, h, w] (the targets' top level), ``memory`` [K, mem_dim, h, w] and
    ``obj_ptr`` [K, C] (the references', shared by every target) -> [B, C, h, w].
    """

    def __init__(self, sam, top_position: torch.Tensor, memory_position: torch.Tensor):
        super().__init__()
        self.sam = sam
        conditioning = sam.maskmem_tpos_enc[sam.num_maskmem - 1]  # every reference: frame 0
        self.register_buffer("curr_pos", top_position[:1].flatten(2).permute(2, 0, 1).clone())
        self.register_buffer("memory_pos", memory_position[:1].flatten(2).permute(2, 0, 1)
                             + conditioning)
        self.register_buffer("pointer_sine", self._pointer_sine(sam))

    @staticmethod
    def _pointer_sine(sam) -> torch.Tensor:
        """The sine encoding of a reference pointer's temporal position [1, tpos_dim] (target
        frame 1, references frame 0, a pseudo-video of two frames)."""
        max_ptrs = min(2, sam.max_obj_ptrs_in_encoder)
        tpos_dim = sam.hidden_dim if sam.proj_tpos_enc_in_obj_ptrs else sam.mem_dim
        return get_1d_sine_pe(torch.tensor([1]) / max(max_ptrs - 1, 1), dim=tpos_dim)

    def _pointer_positions(self, references, split: int) -> torch.Tensor:
        """[K * split, 1, mem_dim], projected per reference as condition_on_memory does."""
        sam = self.sam
        if not sam.add_tpos_enc_to_obj_ptrs:
            return self.pointer_sine.new_zeros(references * split, 1, sam.mem_dim)
        pos = sam.obj_ptr_tpos_proj(self.pointer_sine.repeat(references, 1))
        return pos.unsqueeze(1).repeat_interleave(split, dim=0)

    def forward(self, features: torch.Tensor, memory: torch.Tensor,
                obj_ptr: torch.Tensor) -> torch.Tensor:
        sam, batch = self.sam, features.shape[0]
        references = memory.shape[0]
        tokens = [memory.flatten(2).permute(0, 2, 1).reshape(-1, 1, sam.mem_dim)]
        positions = [self.memory_pos.repeat(references, 1, 1)]
        pointer_tokens = 0
        if sam.use_obj_ptrs_in_encoder:
            ptrs = obj_ptr.unsqueeze(1)  # [K, 1, C]
            split = max(sam.hidden_dim // sam.mem_dim, 1)
            if split > 1:  # a pointer becomes C // mem_dim tokens
                ptrs = ptrs.reshape(references, 1, split, sam.mem_dim).permute(0, 2, 1, 3)
                ptrs = ptrs.flatten(0, 1)
            tokens.append(ptrs)
            positions.append(self._pointer_positions(references, split))
            pointer_tokens = ptrs.shape[0]
        curr = features.flatten(2).permute(2, 0, 1)
        out = sam.memory_attention(
            curr=[curr], curr_pos=[self.curr_pos.expand(-1, batch, -1)],
            memory=torch.cat(tokens).expand(-1, batch, -1),
            memory_pos=torch.cat(positions).expand(-1, batch, -1),
            num_obj_ptr_tokens=pointer_tokens)
        return out.permute(1, 2, 0).reshape(features.shape)


@torch.no_grad()
def constant_positions(sam, image_size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The positional encodings of the feature levels and of a memory ([1, C, h, w] each):
    they depend only on the image size, so one blank image and mask give them."""
    image = torch.zeros(1, 3, image_size, image_size)
    backbone = sam.forward_image(image)
    _, feats, pos, sizes = sam._prepare_backbone_features(backbone)
    frames = pv.FrameFeatures(feats, pos, sizes)
    positions = [p.permute(1, 2, 0).reshape(1, p.size(2), h, w) for p, (h, w) in zip(pos, sizes)]
    mask = torch.zeros(1, 1, image_size, image_size)
    mask[..., : image_size // 2, :] = 1
    memory, _ = pv.reference_memory(sam, frames, mask=mask)
    return positions, memory.pos_enc
