"""LoRA: low-rank updates on the attention projections of the chosen Hiera stages.

Each ``nn.Linear`` named in ``modules`` (``attn.qkv`` and ``attn.proj`` by default) computes
``y = W x + b + (alpha / rank) * B(A(dropout(x)))``. ``B`` starts at zero, so a fresh LoRA is an
exact no-op. The update lives in a child module ``lora`` of the linear layer (stock paths such as
``image_encoder.trunk.blocks.8.attn.qkv.lora.A.weight``); a forward hook adds it, so sam2's own
forward runs unchanged. :meth:`LoRA.merge` folds the update into ``W`` for export or speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from sansa_cli.adapters.base import (
    AdapterStrategy,
    MergedAdapter,
    block_modules,
    modules_option,
)
from sansa_cli.errors import UserInputError


class LoRAUpdate(nn.Module):
    """``scaling * B(A(dropout(x)))`` with A: in -> rank, B: rank -> out (B zero at init)."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float,
                 dropout: float):
        super().__init__()
        self.A = nn.Linear(in_features, rank, bias=False)
        self.B = nn.Linear(rank, out_features, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.scaling = alpha / rank
        nn.init.kaiming_uniform_(self.A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.B.weight)
        self._handle = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.B(self.A(self.dropout(x))) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update as a dense (out, in) matrix."""
        return (self.B.weight @ self.A.weight) * self.scaling


def _attach(linear: nn.Linear, update: LoRAUpdate) -> None:
    linear.lora = update
    update._handle = linear.register_forward_hook(lambda _m, args, out: out + update(args[0]))


class LoRA(AdapterStrategy):
    """Low-rank updates of the image encoder's attention projections."""

    name = "lora"
    can_merge = True

    @dataclass
    class Config:
        rank: int = field(default=8, metadata={"help": "Rank of each update (A: in -> rank)."})
        alpha: float = field(
            default=16.0, metadata={"help": "Scale numerator: the update is (alpha / rank) * BA."}
        )
        dropout: float = field(
            default=0.0, metadata={"help": "Dropout on the LoRA input (training only)."}
        )
        stages: tuple[int, ...] = field(
            default=(2, 3), metadata={"help": "0-based Hiera stages whose blocks get LoRA."}
        )
        modules: tuple[str, ...] = field(
            default=("attn.qkv", "attn.proj"),
            metadata={"help": "Linear layers inside each block to adapt (paths in the block)."},
        )

        def __post_init__(self):
            self.stages = tuple(int(s) for s in self.stages)
            self.modules = modules_option(self.modules)
            if int(self.rank) != self.rank or self.rank < 1:
                raise UserInputError(f"LoRA rank {self.rank} must be a positive integer, e.g. 8")
            self.rank = int(self.rank)
            if not 0 <= self.dropout < 1:
                raise UserInputError(f"LoRA dropout {self.dropout} must be in [0, 1)")

    @classmethod
    def upgrade_config(cls, config: dict) -> dict:
        """Files written by sansa 0.1 call ``modules`` ``targets``."""
        if "targets" in config and "modules" not in config:
            config = {**config, "modules": config["targets"]}
            del config["targets"]
        return config

    def _linears(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        found = block_modules(model, self.config.stages, self.config.modules)
        for path, module in found:
            if not isinstance(module, nn.Linear):
                raise UserInputError(
                    f"LoRA module {path} is a {type(module).__name__}, not a Linear layer; "
                    "choose modules such as attn.qkv, attn.proj"
                )
        return found

    def inject(self, model: nn.Module) -> None:
        c = self.config
        for path, linear in self._linears(model):
            if hasattr(linear, "lora"):
                raise UserInputError(f"{path} already has a LoRA update")
            update = LoRAUpdate(linear.in_features, linear.out_features, c.rank, c.alpha, c.dropout)
            update = update.to(device=linear.weight.device, dtype=linear.weight.dtype)
            _attach(linear, update.train(linear.training))

    def trainable_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        found = {}
        for path, linear in self._linears(model):
            update = getattr(linear, "lora", None)
            if isinstance(update, LoRAUpdate):
                for name, param in update.named_parameters():
                    found[f"{path}.lora.{name}"] = param
        return found

    def shape_hint(self, key: str, shape: tuple[int, ...], model: nn.Module) -> str:
        if key.endswith("lora.A.weight"):
            return f"rank {shape[0]}"
        if key.endswith("lora.B.weight"):
            return f"rank {shape[1]}"
        return ""

    @torch.no_grad()
    def merge(self, model: nn.Module) -> MergedAdapter:
        """Fold every update into its base weight and remove the hooks. Returns the merged
        ``{path.weight, path.bias}`` tensors as a ``qkv`` adapter over the same ``modules``
        (plain SAM2 tensors)."""
        merged = {}
        for path, linear in self._linears(model):
            update = getattr(linear, "lora", None)
            if not isinstance(update, LoRAUpdate):
                raise UserInputError(f"{path} has no LoRA update to merge; inject and load first")
            linear.weight.add_(update.delta_weight().to(linear.weight.dtype))
            update._handle.remove()
            del linear.lora
            merged[f"{path}.weight"] = linear.weight.detach().clone()
            if linear.bias is not None:
                merged[f"{path}.bias"] = linear.bias.detach().clone()
        config = {"stages": list(self.config.stages), "modules": list(self.config.modules)}
        return MergedAdapter("qkv", config, merged)
