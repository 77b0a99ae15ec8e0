"""One function builds a ready SAM2 for every command and the Python API.

:func:`build_model` resolves the SAM2 (a stock name or a YAML, with the video-predictor settings,
an adapter file's base settings and the caller's overrides), loads its checkpoint strictly,
attaches an adapter strategy (from an adapter file, or given with or without weights) and moves
the result to a device. Inference (:func:`sansa_cli.api.load_model`), evaluation, training,
LoRA merging and ``sansa info`` all build their model here, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sansa_cli.core.sam2_base import (
    DEFAULT_SAM2,
    STOCK_MODELS,
    VIDEO_PREDICTOR_SETTINGS,
    BaseModelSpec,
    resolve_base,
)
from sansa_cli.errors import UserInputError


@dataclass
class BuiltModel:
    """A SAM2 with its strategy attached, and where each part came from."""

    sam: Any  # sam2's SAM2Base, in eval mode
    spec: BaseModelSpec
    checkpoint: Path | None  # None: random weights
    strategy: Any = None  # an AdapterStrategy, or None for frozen SAM2
    trainable: dict = field(default_factory=dict)  # stock path -> the strategy's parameters
    adapter_info: Any = None  # the adapter file's AdapterInfo, when built from one
    base_parameters: int = 0  # SAM2's own parameter count, before the strategy added any
    base_fingerprint: str = ""  # SAM2's architecture (names and shapes), before the strategy


def base_spec(sam2: str | None, info=None, overrides: dict[str, Any] | None = None
              ) -> BaseModelSpec:
    """Which SAM2 to build: ``sam2``, else the adapter file's base model, else the default.

    Settings, later ones winning: SAM2's video-predictor settings, the adapter file's base
    settings (``info.base_overrides``), then ``overrides``.
    """
    settings = {**VIDEO_PREDICTOR_SETTINGS, **(info.base_overrides if info else {}),
                **(overrides or {})}
    if sam2 is None and info is not None and info.base_model not in STOCK_MODELS:
        # A SAM2 YAML names classes to instantiate: it is code, so a file may not pick one.
        raise UserInputError(
            f"the adapter file was made on the SAM2 config {info.base_model}; sansa builds a "
            "config file only when you name it: pass --sam2 with that file (sam2= in Python)")
    return resolve_base(sam2 or (info.base_model if info else DEFAULT_SAM2), settings)


def build_model(sam2: str | None = None, *, checkpoint: str | Path | None = None,
                download: bool = True, weights: bool = True,
                overrides: dict[str, Any] | None = None, adapters: str | Path | None = None,
                strategy=None, strategy_tensors: dict | None = None, source: str = "",
                device="cpu", allow_base_mismatch: bool = False,
                seed: int | None = None) -> BuiltModel:
    """Build SAM2, load its checkpoint, attach adapters, move it to ``device``.

    Args:
        sam2: stock SAM2 name or a SAM2 YAML path (default: the adapter file's base model,
            else ``sam2.1_hiera_large``).
        checkpoint: SAM2 checkpoint file; default ``checkpoints/<name>.pt`` (downloaded when
            missing and ``download``).
        weights: False keeps SAM2's random initialisation (no checkpoint; for counting).
        overrides: SAM2 config settings (dotted keys) on top of the defaults.
        adapters: an adapter file; its strategy is attached and its weights loaded, after
            checking that the file fits this SAM2.
        strategy: an adapter strategy to attach instead (fresh, for training or counting), with
            ``strategy_tensors`` to load into it (checked the same way, blamed on ``source``).
        device: where the model goes (a name or a ``torch.device``).
        allow_base_mismatch: accept an adapter file made on another base checkpoint.
        seed: seeds torch before building, so fresh adapters start equal on every process.
    """
    import torch

    from sansa_cli.artifacts.adapter_file import (
        apply_to,
        attach_adapters,
        load_into,
        read_adapter_info,
    )
    from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
    from sansa_cli.core.sam2_base import architecture_fingerprint, build_sam2, load_checkpoint

    info = read_adapter_info(adapters) if adapters is not None else None
    spec = base_spec(sam2, info, overrides)
    ckpt = sam2_checkpoint(spec, checkpoint, download=download) if weights else None
    if seed is not None:
        torch.manual_seed(seed)
    sam = build_sam2(spec, "cpu")
    if ckpt is not None:
        load_checkpoint(sam, ckpt)
    base_parameters = sum(p.numel() for p in sam.parameters())
    fingerprint = architecture_fingerprint(sam)
    trainable: dict = {}
    if info is not None:
        named = sam2 if sam2 in STOCK_MODELS else None  # a stock name given by the user
        strategy, trainable = attach_adapters(sam, adapters, info, ckpt, allow_base_mismatch,
                                              base_model=named)
    elif strategy is not None:
        trainable = apply_to(sam, strategy, source or f"adapter '{strategy.name}'")
        if strategy_tensors is not None:
            load_into(sam, strategy, trainable, strategy_tensors, source, spec.name)
    sam = sam.to(device).eval()
    return BuiltModel(sam, spec, ckpt, strategy, trainable, info, base_parameters, fingerprint)
