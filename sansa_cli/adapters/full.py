"""Full: fine-tune SAM2's own parameters (all of them by default), adding nothing.

The SANSA paper's 224M-parameter ablation row. ``include`` narrows the choice with a regular
expression over stock parameter paths (``re.fullmatch``), e.g. ``sam_mask_decoder\\..*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

from sansa_cli.adapters.base import AdapterStrategy
from sansa_cli.errors import UserInputError


class Full(AdapterStrategy):
    """Every SAM2 parameter (or those whose path fully matches ``include``) trains."""

    name = "full"

    @dataclass
    class Config:
        include: str = field(
            default=".*",
            metadata={"help": "Regex (full match) over stock parameter paths that train."},
        )

        def __post_init__(self):
            try:
                re.compile(self.include)
            except re.error as exc:
                raise UserInputError(
                    f"full: include {self.include!r} is not a valid regular expression ({exc})"
                ) from exc

    def inject(self, model: nn.Module) -> None:
        if not self.trainable_parameters(model):
            raise UserInputError(
                f"full: include {self.config.include!r} matches no parameter of this SAM2; "
                "use a pattern over stock paths such as image_encoder\\..*"
            )

    def trainable_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        pattern = re.compile(self.config.include)
        return {name: p for name, p in model.named_parameters() if pattern.fullmatch(name)}
