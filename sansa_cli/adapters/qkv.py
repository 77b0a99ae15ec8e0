"""QKV: fine-tune the image encoder's own attention input projections (``attn.qkv``).

Nothing is added to SAM2: the existing weights and biases of ``attn.qkv`` in every Hiera block
become trainable (the SANSA paper's ~50M-parameter ablation row on Hiera-L). An adapter file of
this strategy therefore holds plain SAM2 tensors under their stock names. ``modules`` widens the
choice to other layers of the blocks; a merged LoRA export uses it for ``attn.qkv, attn.proj``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from sansa_cli.adapters.base import AdapterStrategy, block_modules, modules_option


class QKV(AdapterStrategy):
    """Trains the existing ``attn.qkv`` projections of the chosen Hiera stages."""

    name = "qkv"

    @dataclass
    class Config:
        stages: tuple[int, ...] = field(
            default=(0, 1, 2, 3), metadata={"help": "0-based Hiera stages whose blocks train."}
        )
        modules: tuple[str, ...] = field(
            default=("attn.qkv",),
            metadata={"help": "Layers inside each block whose weights and biases train."},
        )

        def __post_init__(self):
            self.stages = tuple(int(s) for s in self.stages)
            self.modules = modules_option(self.modules)

    def inject(self, model: nn.Module) -> None:
        block_modules(model, self.config.stages, self.config.modules)  # validates the names

    def trainable_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        return {
            f"{path}.{name}": param
            for path, module in block_modules(model, self.config.stages, self.config.modules)
            for name, param in module.named_parameters()
        }
