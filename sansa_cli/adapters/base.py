"""The contract every adapter strategy follows, and helpers to find Hiera blocks by stage.

A strategy is a subclass of :class:`AdapterStrategy` registered under the ``sansa_cli.adapters``
entry-point group. It sets ``name`` and a ``Config`` dataclass (fields carry ``help`` metadata
that the CLI shows; a field naming layers inside a Hiera block is called ``modules``) and
implements two methods:

- ``inject(model)`` attaches its modules to a stock SAM2 without touching sam2's source (hooks
  or swapped module instances; no state may pass between hooks, so a block run twice, as
  activation checkpointing does, gives the same output);
- ``trainable_parameters(model)`` returns the parameters it trains, keyed by their stock SAM2
  module paths (the keys of its adapter files).

Optional capabilities are declared here, so core code never names a strategy:
``can_merge`` with :meth:`AdapterStrategy.merge` (fold the adapter into SAM2's own weights),
:meth:`AdapterStrategy.shape_hint` (explain a stored tensor's shape in error messages) and
:meth:`AdapterStrategy.upgrade_config` (read configs written by older versions).
:func:`apply_strategy` freezes everything but the strategy's parameters.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from sansa_cli.errors import UserInputError


@dataclass
class MergedAdapter:
    """What :meth:`AdapterStrategy.merge` returns: plain SAM2 tensors and the strategy (with
    its config) that loads them, e.g. ``qkv`` for a merged LoRA."""

    strategy: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]


class AdapterStrategy:
    """Base class of adapter strategies; subclasses set ``name`` and ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    #: the strategy implements :meth:`merge`
    can_merge: ClassVar[bool] = False

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()

    @classmethod
    def from_options(cls, **options: Any) -> "AdapterStrategy":
        """Build from keyword options (None values keep the defaults); unknown keys are errors."""
        fields = cls.option_names()
        unknown = sorted(k for k in options if k not in fields)
        if unknown:
            raise UserInputError(
                f"adapter '{cls.name}' has no option {', '.join(unknown)}; "
                f"its options are: {', '.join(sorted(fields))}"
            )
        given = {k: v for k, v in options.items() if v is not None}
        return cls(cls.Config(**given))

    @classmethod
    def option_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls.Config)}

    @classmethod
    def upgrade_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A stored config as this version reads it (e.g. a renamed option); default: as is."""
        return config

    def config_json(self) -> str:
        """The full config as one JSON value (stored in adapter files)."""
        return json.dumps(dataclasses.asdict(self.config), sort_keys=True)

    def config_dict(self) -> dict[str, Any]:
        """The full config as plain JSON-ready values (tuples become lists)."""
        return json.loads(self.config_json())

    def inject(self, model: nn.Module) -> None:
        raise NotImplementedError

    def trainable_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        raise NotImplementedError

    def merge(self, model: nn.Module) -> MergedAdapter:
        """Fold the injected, loaded adapter into SAM2's own weights (``can_merge`` only)."""
        raise UserInputError(f"adapter '{self.name}' cannot be merged into SAM2's weights")

    def shape_hint(self, key: str, shape: tuple[int, ...], model: nn.Module) -> str:
        """What a stored tensor of ``shape`` at ``key`` says about the config it was made with
        (e.g. "bottleneck 0.8"), for error messages; empty when the strategy cannot tell."""
        return ""


def apply_strategy(model: nn.Module, strategy: AdapterStrategy) -> dict[str, nn.Parameter]:
    """Inject ``strategy`` into ``model``, freeze all else; return the trainable parameters."""
    strategy.inject(model)
    trainable = strategy.trainable_parameters(model)
    if not trainable:
        raise UserInputError(f"adapter '{strategy.name}' matched no module of this SAM2 model")
    for param in model.parameters():
        param.requires_grad_(False)
    for param in trainable.values():
        param.requires_grad_(True)
    return trainable


def stage_blocks(model: nn.Module, stages: tuple[int, ...]) -> list[tuple[int, nn.Module]]:
    """(block index, block) of every Hiera block in the given 0-based stages, in order."""
    trunk = model.image_encoder.trunk
    ends = list(trunk.stage_ends)
    bad = [s for s in stages if not 0 <= s < len(ends)]
    if bad or not stages:
        raise UserInputError(
            f"stages {list(stages)} do not exist in this Hiera; "
            f"choose from 0..{len(ends) - 1} (for example --stages 2,3)"
        )
    starts = [0] + [e + 1 for e in ends[:-1]]
    return [
        (i, trunk.blocks[i])
        for s in sorted(set(stages))
        for i in range(starts[s], ends[s] + 1)
    ]


def block_modules(model: nn.Module, stages: tuple[int, ...],
                  names: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    """(stock path, module) of each submodule ``names`` (paths inside a block, e.g.
    ``attn.qkv``) of every Hiera block in ``stages``; a name found in no block is an error."""
    found, unmatched = [], set(names)
    for index, block in stage_blocks(model, stages):
        for name in names:
            try:
                module = block.get_submodule(name)
            except AttributeError:
                continue
            unmatched.discard(name)
            found.append((f"{block_path(index)}.{name}", module))
    if unmatched:
        raise UserInputError(
            f"module {', '.join(sorted(unmatched))} matches nothing in the Hiera blocks of stages "
            f"{list(stages)}; use paths inside a block such as attn.qkv, attn.proj, mlp.layers.0"
        )
    return found


def block_path(index: int) -> str:
    """The stock SAM2 module path of Hiera block ``index``."""
    return f"image_encoder.trunk.blocks.{index}"


def modules_option(value) -> tuple[str, ...]:
    """A ``modules`` config value (one path or several) as a tuple of paths."""
    return (value,) if isinstance(value, str) else tuple(value)


def build_strategy(name: str, options: dict[str, Any] | None = None) -> AdapterStrategy:
    """The registered strategy ``name`` configured with ``options`` (CLI or config-file values)."""
    from sansa_cli import registry

    cls = registry.load("adapter", name)
    return cls.from_options(**(options or {}))
