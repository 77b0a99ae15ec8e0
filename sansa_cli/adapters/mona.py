"""Mona (multi-cognitive visual adapter, Yin et al. 2025) in the blocks AdaptFormer uses.

Each Hiera block of the chosen stages (the last two by default) gets one Mona on its output:
``x = x + mona(x)`` with, on the (B, H, W, C) stream,
``mona(x) = up(dropout(gelu(convs(down(norm(x) * gamma + x * gammax)))))`` where ``convs`` averages
depth-wise 3x3, 5x5 and 7x7 convolutions (plus identity) and adds a 1x1 projection. The up
projection starts at zero, so a fresh Mona is an exact no-op. The width is
``int(block.dim_out * bottleneck)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from sansa_cli.adapters.adaptformer import bottleneck_width
from sansa_cli.adapters.base import AdapterStrategy, block_path, stage_blocks
from sansa_cli.errors import UserInputError


class MultiKernelConv(nn.Module):
    """Average of depth-wise 3x3/5x5/7x7 convolutions plus identity, then a 1x1 residual."""

    def __init__(self, width: int):
        super().__init__()
        self.conv3 = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.conv5 = nn.Conv2d(width, width, 5, padding=2, groups=width)
        self.conv7 = nn.Conv2d(width, width, 7, padding=3, groups=width)
        self.projector = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        x = (self.conv3(x) + self.conv5(x) + self.conv7(x)) / 3.0 + x
        return x + self.projector(x)


class MonaAdapter(nn.Module):
    """Scaled LayerNorm -> down -> multi-kernel conv -> GELU -> dropout -> up (zero at init)."""

    def __init__(self, dim: int, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))
        self.gammax = nn.Parameter(torch.ones(dim))
        self.down_proj = nn.Linear(dim, width)
        self.convs = MultiKernelConv(width)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up_proj = nn.Linear(width, dim)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C) -> same
        h = self.down_proj(self.norm(x) * self.gamma + x * self.gammax)
        h = self.convs(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.up_proj(self.dropout(F.gelu(h)))


class Mona(AdapterStrategy):
    """One Mona adapter on the output of every Hiera block of the chosen stages."""

    name = "mona"

    @dataclass
    class Config:
        bottleneck: float = field(
            default=0.1,
            metadata={"help": "Bottleneck ratio: width = int(block output dim * ratio)."},
        )
        stages: tuple[int, ...] = field(
            default=(2, 3), metadata={"help": "0-based Hiera stages that get Mona adapters."}
        )
        dropout: float = field(
            default=0.1, metadata={"help": "Dropout before the up projection (training only)."}
        )

        def __post_init__(self):
            self.stages = tuple(int(s) for s in self.stages)
            if not 0 < self.bottleneck <= 4:
                raise UserInputError(
                    f"mona bottleneck ratio {self.bottleneck} is out of range; use a value in "
                    "(0, 4], for example 0.1"
                )
            if not 0 <= self.dropout < 1:
                raise UserInputError(f"mona dropout {self.dropout} must be in [0, 1)")

    def inject(self, model: nn.Module) -> None:
        for index, block in stage_blocks(model, self.config.stages):
            if hasattr(block, "mona"):
                raise UserInputError(f"Hiera block {index} already has a Mona adapter")
            width = int(block.dim_out * self.config.bottleneck)
            if width < 1:
                raise UserInputError(
                    f"mona bottleneck ratio {self.config.bottleneck} gives an empty bottleneck on "
                    f"block {index} (dim {block.dim_out}); use a larger ratio"
                )
            ref = next(block.parameters())
            adapter = MonaAdapter(block.dim_out, width, self.config.dropout)
            block.mona = adapter.to(device=ref.device, dtype=ref.dtype).train(block.training)
            block.mona._handle = block.register_forward_hook(
                lambda _m, _args, out, a=block.mona: out + a(out))

    def trainable_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        found = {}
        for index, block in stage_blocks(model, self.config.stages):
            adapter = getattr(block, "mona", None)
            if isinstance(adapter, MonaAdapter):
                for name, param in adapter.named_parameters():
                    found[f"{block_path(index)}.mona.{name}"] = param
        return found

    def shape_hint(self, key: str, shape: tuple[int, ...], model: nn.Module) -> str:
        width = bottleneck_width(key, shape, "mona")
        if width is None and ".mona.convs." in key and shape:
            width = shape[0]
        blocks = model.image_encoder.trunk.blocks
        index = int(key.split(".")[3])  # image_encoder.trunk.blocks.{index}.mona...
        if width is None or index >= len(blocks):
            return ""
        dim = blocks[index].dim_out
        return f"bottleneck {width / dim:.2f} (width {width} on a block of dim {dim})"
