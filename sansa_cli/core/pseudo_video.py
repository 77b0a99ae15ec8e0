"""Few-shot segmentation as a pseudo-video on a stock SAM2 (the SANSA formulation).

The K references form frame 0 of the pseudo-video, the target comes after them. References never
pass through memory attention: a mask reference is taken as the frame's output (SAM2's
mask-as-output path) and written to memory by the memory encoder. All references share one
temporal slot (frame 0, SAM2's conditioning-frame encoding), so their order cannot change the
result. For K = 1 this is exactly what ``SAM2VideoPredictor`` computes for a two-frame video.

During training, earlier targets' predictions become pseudo-references: frame j's memory is
encoded from its predicted mask and seen by later targets with SAM2's recency encodings.
Shapes: vision features are (HW, B, C) per level as SAM2 keeps them; memories are [B, C, h, w].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sam2.modeling.sam2_utils import get_1d_sine_pe


@dataclass
class FrameFeatures:
    """Image-encoder output of a batch of frames, flattened as SAM2's tracking step expects."""

    vision_feats: list[torch.Tensor]  # per level (HW, B, C)
    vision_pos: list[torch.Tensor]  # per level (HW, B, C)
    feat_sizes: list[tuple[int, int]]

    @property
    def batch(self) -> int:
        return self.vision_feats[-1].size(1)

    @staticmethod
    def cat(parts: list["FrameFeatures"]) -> "FrameFeatures":
        """Join batches of frames (same model, same sizes) into one batch."""
        if len(parts) == 1:
            return parts[0]
        levels = range(len(parts[0].vision_feats))
        return FrameFeatures([torch.cat([p.vision_feats[i] for p in parts], 1) for i in levels],
                             [torch.cat([p.vision_pos[i] for p in parts], 1) for i in levels],
                             parts[0].feat_sizes)

    def to(self, device) -> "FrameFeatures":
        return FrameFeatures([x.to(device) for x in self.vision_feats],
                             [x.to(device) for x in self.vision_pos], self.feat_sizes)

    def select(self, indices: list[int]) -> "FrameFeatures":
        """The features of some frames of the batch, in the given order."""
        idx = torch.tensor(indices, device=self.vision_feats[-1].device)
        return FrameFeatures([x.index_select(1, idx) for x in self.vision_feats],
                             [x.index_select(1, idx) for x in self.vision_pos], self.feat_sizes)


@dataclass
class FrameMemory:
    """One frame's entry in the memory bank."""

    features: torch.Tensor  # [B, mem_dim, h, w]
    pos_enc: torch.Tensor  # [B, mem_dim, h, w]
    obj_ptr: torch.Tensor  # [B, hidden_dim]

    @staticmethod
    def cat(parts: list["FrameMemory"]) -> "FrameMemory":
        """Join the memories of several frames into one batch."""
        return FrameMemory(torch.cat([p.features for p in parts]),
                           torch.cat([p.pos_enc for p in parts]),
                           torch.cat([p.obj_ptr for p in parts]))

    def item(self, i: int) -> "FrameMemory":
        return FrameMemory(self.features[i:i + 1], self.pos_enc[i:i + 1], self.obj_ptr[i:i + 1])


@dataclass
class FramePrediction:
    """SAM2's decoder output for a batch of target frames (the mask with the best IoU)."""

    low_res_logits: torch.Tensor  # [B, 1, S/4, S/4]
    iou: torch.Tensor  # [B] predicted IoU of the kept mask
    obj_ptr: torch.Tensor  # [B, hidden_dim]
    object_score_logits: torch.Tensor  # [B, 1]


def encode_frames(sam, images: torch.Tensor) -> FrameFeatures:
    """Run the (adapted) image encoder on [B, 3, S, S] normalised images."""
    backbone_out = sam.forward_image(images)
    _, feats, pos, sizes = sam._prepare_backbone_features(backbone_out)
    return FrameFeatures(feats, pos, sizes)


def _high_res_features(frames: FrameFeatures):
    if len(frames.vision_feats) == 1:
        return None
    return [x.permute(1, 2, 0).view(x.size(1), x.size(2), *s)
            for x, s in zip(frames.vision_feats[:-1], frames.feat_sizes[:-1])]


def _top_level(sam, frames: FrameFeatures) -> torch.Tensor:
    h, w = frames.feat_sizes[-1]
    return frames.vision_feats[-1].permute(1, 2, 0).view(frames.batch, sam.hidden_dim, h, w)


def encode_memory(sam, frames: FrameFeatures, low_res_logits, object_score_logits, obj_ptr,
                  prompted: bool) -> FrameMemory:
    """Write frames and their masks into memory, as the video predictor does: the memory encoder
    sees the low-resolution mask logits upsampled to the image size."""
    high_res = upsample_logits(low_res_logits, (sam.image_size, sam.image_size))
    features, pos_enc = sam._encode_new_memory(
        current_vision_feats=frames.vision_feats, feat_sizes=frames.feat_sizes,
        pred_masks_high_res=high_res, object_score_logits=object_score_logits,
        is_mask_from_pts=prompted,
    )
    return FrameMemory(features, pos_enc[-1], obj_ptr)


def upsample_logits(logits: torch.Tensor, size) -> torch.Tensor:
    """Mask logits [B, 1, h, w] resized to ``size`` (height, width) bilinearly, as SAM2 does."""
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def reference_memory(sam, frames: FrameFeatures, *, mask: torch.Tensor | None = None,
                     points: dict | None = None) -> tuple[FrameMemory, torch.Tensor]:
    """Memory of reference frames, the one path for inference, evaluation and training.

    A reference is marked by ``mask`` [B, 1, S, S] (0/1 at the model's size; see
    :func:`sansa_cli.core.images.mask_to_input`) or by ``points`` (SAM2's ``point_inputs``:
    clicks, a box's corners, scribble pixels; see :func:`sansa_cli.core.prompts.point_inputs`).
    References never pass through memory attention. Returns the memory and the reference's
    mask logits [B, 1, S/4, S/4] (for prompts: the mask SAM2 drew).
    """
    if (mask is None) == (points is None):
        raise ValueError("a reference is marked by a mask or by points, exactly one of them")
    if mask is not None:
        return _mask_reference_memory(sam, frames, mask)
    return _prompt_reference_memory(sam, frames, points)


def _mask_reference_memory(sam, frames: FrameFeatures, masks: torch.Tensor):
    """The mask is the frame's output (+-10 logits); its object pointer comes from the SAM heads
    with the mask as prompt."""
    out = sam._use_mask_as_output(_top_level(sam, frames), _high_res_features(frames), masks)
    low_res, obj_ptr, object_score_logits = out[3], out[5], out[6]
    memory = encode_memory(sam, frames, low_res, object_score_logits, obj_ptr, prompted=True)
    return memory, low_res


def _prompt_reference_memory(sam, frames: FrameFeatures, point_inputs: dict):
    """SAM2's decoder draws the reference's mask on the frame's own features (single-mask
    output); that mask is then written to memory."""
    # An initial conditioning frame: SAM2 adds its no-memory embedding (or, in configs without
    # that shortcut, attends to a single no-memory token); no reference memory is involved.
    pix_feat = sam._prepare_memory_conditioned_features(
        frame_idx=0, is_init_cond_frame=True, current_vision_feats=frames.vision_feats[-1:],
        current_vision_pos_embeds=frames.vision_pos[-1:], feat_sizes=frames.feat_sizes[-1:],
        output_dict={}, num_frames=1)
    out = sam._forward_sam_heads(backbone_features=pix_feat, point_inputs=point_inputs,
                                 mask_inputs=None, high_res_features=_high_res_features(frames),
                                 multimask_output=False)
    low_res, obj_ptr, object_score_logits = out[3], out[5], out[6]
    memory = encode_memory(sam, frames, low_res, object_score_logits, obj_ptr, prompted=True)
    return memory, low_res


def _tokens(x: torch.Tensor, batch: int, dtype) -> torch.Tensor:
    """[b, C, h, w] -> (hw, batch, C), broadcasting a single reference over the batch."""
    tokens = x.to(dtype).flatten(2).permute(2, 0, 1)
    return tokens.expand(-1, batch, -1) if tokens.size(1) != batch else tokens


def _previous_slots(sam, frame_idx: int, count: int) -> list[tuple[int, int]]:
    """(frame index, temporal-encoding index) of the pseudo-reference frames SAM2 would attend to
    from ``frame_idx``, following its recency rule (frames 1..count exist)."""
    stride = 1 if sam.training else sam.memory_temporal_stride_for_eval
    slots = []
    for t_pos in range(1, sam.num_maskmem):
        t_rel = sam.num_maskmem - t_pos  # how many frames back
        if t_rel == 1:
            prev = frame_idx - 1
        else:
            prev = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        if 1 <= prev <= count:
            slots.append((prev, sam.num_maskmem - t_pos - 1))
    return slots


def _pointer_tokens(sam, references, previous, frame_idx, num_frames, batch, device):
    """Object-pointer tokens and their temporal encodings; every reference sits at frame 0."""
    max_ptrs = min(num_frames, sam.max_obj_ptrs_in_encoder)
    pos_and_ptrs = [(frame_idx, ref.obj_ptr) for ref in references]
    for t_diff in range(1, max_ptrs):
        t = frame_idx - t_diff
        if t < 1:
            break
        pos_and_ptrs.append((t_diff, previous[t - 1].obj_ptr))
    pos_list, ptr_list = zip(*pos_and_ptrs)
    C = sam.hidden_dim
    ptrs = torch.stack([p.expand(batch, -1) for p in ptr_list], dim=0)  # [P, B, C]
    if sam.add_tpos_enc_to_obj_ptrs:
        tpos_dim = C if sam.proj_tpos_enc_in_obj_ptrs else sam.mem_dim
        pos = torch.tensor(pos_list, device=device) / max(max_ptrs - 1, 1)
        pos = sam.obj_ptr_tpos_proj(get_1d_sine_pe(pos, dim=tpos_dim))
        pos = pos.unsqueeze(1).expand(-1, batch, sam.mem_dim)
    else:
        pos = ptrs.new_zeros(len(pos_list), batch, sam.mem_dim)
    if sam.mem_dim < C:  # a pointer becomes C // mem_dim tokens
        ptrs = ptrs.reshape(-1, batch, C // sam.mem_dim, sam.mem_dim)
        ptrs = ptrs.permute(0, 2, 1, 3).flatten(0, 1)
        pos = pos.repeat_interleave(C // sam.mem_dim, dim=0)
    return ptrs, pos


def condition_on_memory(sam, frames: FrameFeatures, references: list[FrameMemory],
                        previous: list[FrameMemory] | None = None,
                        num_frames: int | None = None) -> torch.Tensor:
    """Memory attention of target frames over the memory bank; returns [B, C, H, W].

    The target is frame ``len(previous) + 1`` of a pseudo-video of ``num_frames`` frames (default:
    just after it). Each item of ``references`` holds one reference (batch 1, shared by all
    targets) or one per target.
    """
    previous = previous or []
    frame_idx = len(previous) + 1
    num_frames = num_frames or frame_idx + 1
    batch, dtype = frames.batch, frames.vision_feats[-1].dtype
    device = frames.vision_feats[-1].device
    memory, memory_pos = [], []
    conditioning = sam.maskmem_tpos_enc[sam.num_maskmem - 1]
    for ref in references:
        memory.append(_tokens(ref.features, batch, dtype))
        memory_pos.append(_tokens(ref.pos_enc, batch, dtype) + conditioning)
    for prev, slot in _previous_slots(sam, frame_idx, len(previous)):
        memory.append(_tokens(previous[prev - 1].features, batch, dtype))
        memory_pos.append(_tokens(previous[prev - 1].pos_enc, batch, dtype)
                          + sam.maskmem_tpos_enc[slot])
    num_ptr_tokens = 0
    if sam.use_obj_ptrs_in_encoder:
        ptrs, ptr_pos = _pointer_tokens(sam, references, previous, frame_idx, num_frames,
                                        batch, device)
        memory.append(ptrs.to(dtype))
        memory_pos.append(ptr_pos.to(dtype))
        num_ptr_tokens = ptrs.size(0)
    out = sam.memory_attention(
        curr=frames.vision_feats[-1:], curr_pos=frames.vision_pos[-1:],
        memory=torch.cat(memory, dim=0), memory_pos=torch.cat(memory_pos, dim=0),
        num_obj_ptr_tokens=num_ptr_tokens,
    )
    h, w = frames.feat_sizes[-1]
    return out.permute(1, 2, 0).view(batch, sam.hidden_dim, h, w)


def decode_target(sam, frames: FrameFeatures, conditioned: torch.Tensor) -> FramePrediction:
    """SAM2's mask decoder on memory-conditioned features (multimask when SAM2 tracks with it,
    keeping the mask with the highest predicted IoU)."""
    multimask = sam._use_multimask(is_init_cond_frame=False, point_inputs=None)
    _, _, ious, low_res, _, obj_ptr, object_score_logits = sam._forward_sam_heads(
        backbone_features=conditioned, point_inputs=None, mask_inputs=None,
        high_res_features=_high_res_features(frames), multimask_output=multimask,
    )
    iou = ious.max(dim=-1).values if multimask else ious[:, 0]
    return FramePrediction(low_res, iou, obj_ptr, object_score_logits)


def segment_targets(sam, frames: FrameFeatures, references: list[FrameMemory],
                    previous: list[FrameMemory] | None = None,
                    num_frames: int | None = None) -> FramePrediction:
    """Memory attention then mask decoding for a batch of target frames."""
    conditioned = condition_on_memory(sam, frames, references, previous, num_frames)
    return decode_target(sam, frames, conditioned)
