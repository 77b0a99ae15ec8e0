"""AdaptFormer, the SANSA paper's adapter: a bottleneck MLP parallel to each block's MLP.

In every Hiera block of the chosen stages (the last two by default) the block computes
``x = x + mlp(norm2(x)) + adapter(x)`` where ``x`` is the residual stream after attention and
``adapter(x) = up(relu(down(norm(x)))) * 0.1``. The up projection starts at zero, so a fresh
adapter is an exact no-op. The bottleneck is ``int(block.dim * ratio)`` with ``block.dim`` the
block's input width, as in the authors' models (9,898,385 parameters on Hiera-L at ratio 0.3).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from sansa_cli.adapters.base import AdapterStrategy, block_path, stage_blocks
from sansa_cli.errors import UserInputError


class AdaptFormerAdapter(nn.Module):
    """LayerNorm -> Linear(dim, b) -> ReLU -> Linear(b, dim) -> * scale, zero at init."""

    def __init__(self, dim: int, bottleneck: int, scale: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down_proj = nn.Linear(dim, bottleneck)
        self.up_proj = nn.Linear(bottleneck, dim)
        self.scale = scale
        nn.init.kaiming_uniform_(self.down_proj.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_proj(F.relu(self.down_proj(self.norm(x)))) * self.scale


def _attach(block: nn.Module, adapter: AdaptFormerAdapter) -> None:
    """Run ``adapter`` beside ``block.mlp`` on the stream that enters ``block.norm2``.

    sam2's block computes ``x + mlp(norm2(x))``. Both module instances get a subclass of their
    own class (parameters, names and state dict unchanged): ``norm2`` hands the stream through
    and the MLP normalises it itself and adds the adapter's output, so the block computes
    ``x + mlp(norm2(x)) + adapter(x)`` with no state kept between calls. A consequence worth
    knowing: on an adapted block, calling ``block.norm2`` by itself (a hook or a feature probe)
    returns its input; ``block.norm2.normalize(x)`` is the LayerNorm.
    """
    block.adapter = adapter
    norm, mlp = block.norm2, block.mlp
    norm.__class__ = _stream_through(type(norm))
    mlp.__class__ = _with_adapter(type(mlp))
    mlp._adaptformer = (norm, adapter)  # references only: both are registered on the block


def _pass_stream(self, x: torch.Tensor) -> torch.Tensor:
    return x


@functools.cache
def _stream_through(cls: type) -> type:
    """``cls`` whose call returns its input; ``normalize`` is the stock forward."""
    return type(f"StreamThrough{cls.__name__}", (cls,),
                {"forward": _pass_stream, "normalize": cls.forward})


@functools.cache
def _with_adapter(cls: type) -> type:
    """``cls`` (a block's MLP) that normalises its input first and adds the adapter's output."""
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm, adapter = self._adaptformer
        return cls.forward(self, norm.normalize(x)) + adapter(x)

    return type(f"Adapted{cls.__name__}", (cls,), {"forward": forward})


class AdaptFormer(AdapterStrategy):
    """AdaptFormer adapters in the last Hiera stages (the SANSA paper's choice)."""

    name = "adaptformer"

    @dataclass
    class Config:
        bottleneck: float = field(
            default=0.3,
            metadata={"help": "Bottleneck ratio: width = int(block input dim * ratio)."},
        )
        stages: tuple[int, ...] = field(
            default=(2, 3), metadata={"help": "0-based Hiera stages that get adapters."}
        )
        scale: float = field(default=0.1, metadata={"help": "Fixed output scale."})

        def __post_init__(self):
            self.stages = tuple(int(s) for s in self.stages)
            if not 0 < self.bottleneck <= 4:
                raise UserInputError(
                    f"bottleneck ratio {self.bottleneck} is out of range; use a value in (0, 4], "
                    "for example 0.3"
                )

    def inject(self, model: nn.Module) -> None:
        for index, block in stage_blocks(model, self.config.stages):
            if hasattr(block, "adapter"):
                raise UserInputError(f"Hiera block {index} already has an adapter")
            width = int(block.dim * self.config.bottleneck)
            if width < 1:
                raise UserInputError(
                    f"bottleneck ratio {self.config.bottleneck} gives an empty bottleneck on "
                    f"block {index} (dim {block.dim}); use a larger ratio"
                )
            adapter = AdaptFormerAdapter(block.dim_out, width, self.config.scale)
            ref = next(block.parameters())
            _attach(block, adapter.to(device=ref.device, dtype=ref.dtype))

    def trainable_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        found = {}
        for index, block in stage_blocks(model, self.config.stages):
            adapter = getattr(block, "adapter", None)
            if isinstance(adapter, AdaptFormerAdapter):
                for name, param in adapter.named_parameters():
                    found[f"{block_path(index)}.adapter.{name}"] = param
        return found

    def shape_hint(self, key: str, shape: tuple[int, ...], model: nn.Module) -> str:
        width = bottleneck_width(key, shape, "adapter")
        blocks = model.image_encoder.trunk.blocks
        index = int(key.split(".")[3])  # image_encoder.trunk.blocks.{index}.adapter...
        if width is None or index >= len(blocks):
            return ""
        dim = blocks[index].dim
        return f"bottleneck {width / dim:.2f} (width {width} on a block of dim {dim})"


def bottleneck_width(key: str, shape: tuple[int, ...], child: str) -> int | None:
    """The bottleneck width a stored down/up projection tensor implies, else None."""
    if f".{child}.down_proj." in key and len(shape) >= 1:
        return shape[0]
    if key.endswith(f".{child}.up_proj.weight") and len(shape) == 2:
        return shape[1]
    return None
