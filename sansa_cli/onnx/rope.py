"""SAM2's rotary position encoding with real numbers, swapped in for the ONNX export only.

sam2's ``RoPEAttention`` rotates query and key pairs by multiplying complex tensors, which no
ONNX exporter supports. :class:`RealRoPEAttention` computes the same rotation of each pair
``(x0, x1)`` by the angle's cosine ``c`` and sine ``s`` as ``(x0 c - x1 s, x0 s + x1 c)``, the
complex product written out: in torch the result is identical to the bit. Keys longer than the
queries (memories of several frames) are rotated per frame by a reshape, so the number of frames
may stay a dynamic dimension of the graph.

Attention is computed for blocks of ``query_block`` queries at a time (rows of attention do not
depend on each other; in torch the result is again identical to the bit). Exported, plain
attention becomes MatMul, Softmax, MatMul, and onnxruntime then holds the score matrix of one
block, [B, heads, block, keys], instead of all 4096 queries' at 1024 px: measured on Hiera-T
with 5 references, 0.58 GB instead of 1.65 GB more peak memory, at about the same speed.

:func:`real_rope` swaps the class of the existing module instances for the duration of a
``with`` block and puts them back after; parameters, names and sam2's source are untouched.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F
from sam2.modeling.sam.transformer import RoPEAttention

#: queries per attention block in exported graphs
QUERY_BLOCK = 256


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x`` [..., N, D] with each pair of channels rotated by the angles of ``cos``/``sin``
    [N, D/2] (``N`` may divide the token count: the angles repeat for each block of N)."""
    tokens, dim = cos.shape[0], x.shape[-1]
    pairs = x.float().unflatten(-2, (-1, tokens)).unflatten(-1, (dim // 2, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    return rotated.flatten(-2).flatten(-3, -2).type_as(x)


class RealRoPEAttention(RoPEAttention):
    """``RoPEAttention`` computing its rotation without complex numbers (same results)."""

    def _angles(self, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        cis = self.freqs_cis
        if cis.shape[0] != tokens:  # as sam2 does: a square grid of another size
            side = math.sqrt(tokens)
            cis = self.compute_cis(end_x=side, end_y=side)
        return cis.real.contiguous(), cis.imag.contiguous()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                num_k_exclude_rope: int = 0) -> torch.Tensor:
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)
        if not self.rope_k_repeat and q.shape[-2] != k.shape[-2]:
            raise ValueError("keys longer than the queries need rope_k_repeat, as in sam2")
        cos, sin = self._angles(q.shape[-2])
        cos, sin = cos.to(q.device), sin.to(q.device)
        q = rotate_pairs(q, cos, sin)
        rope_tokens = k.shape[-2] - num_k_exclude_rope  # object pointers are not rotated
        k = torch.cat([rotate_pairs(k[:, :, :rope_tokens], cos, sin),
                       k[:, :, rope_tokens:]], dim=2)
        dropout_p = self.dropout_p if self.training else 0.0
        block = getattr(self, "query_block", None)
        if block and q.shape[-2] > block:
            out = torch.cat([F.scaled_dot_product_attention(part, k, v, dropout_p=dropout_p)
                             for part in q.split(block, dim=-2)], dim=-2)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        return self.out_proj(self._recombine_heads(out))


@contextlib.contextmanager
def real_rope(model: torch.nn.Module, query_block: int | None = QUERY_BLOCK) -> Iterator[int]:
    """Every ``RoPEAttention`` of ``model`` computes with :class:`RealRoPEAttention` inside the
    block, attending ``query_block`` queries at a time (None: all at once); yields how many
    modules were swapped. The original classes are restored on exit."""
    swapped = [m for m in model.modules() if type(m) is RoPEAttention]
    for module in swapped:
        module.__class__ = RealRoPEAttention
        module.query_block = query_block
    try:
        yield len(swapped)
    finally:
        for module in swapped:
            module.__class__ = RoPEAttention
            del module.query_block
