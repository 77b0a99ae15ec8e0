"""``load_model``: a stock SAM2 checkpoint, optionally adapters, on a device."""

from __future__ import annotations

from pathlib import Path

from sansa_cli.errors import UserInputError


def load_model(sam2: str | None = None, checkpoint: str | Path | None = None,
               adapters: str | Path | None = None, device: str = "auto",
               precision: str = "fp32", batch_size: int | None = None, download: bool = True,
               allow_base_mismatch: bool = False):
    """Build SAM2, load its checkpoint strictly, layer adapters on it, and wrap it for inference.

    Args:
        sam2: stock SAM2 name or a SAM2 YAML path. Default: the adapter file's base model, else
            ``sam2.1_hiera_large``.
        checkpoint: SAM2 checkpoint; default ``checkpoints/<name>.pt`` (downloaded if missing).
        adapters: an adapter ``.safetensors`` file, or None for frozen SAM2.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast).
        batch_size: how many frames go through the image encoder at once (default: 1 on the
            CPU, where larger batches measured no faster, and 4 on accelerators).
        download: fetch a missing stock checkpoint from Meta's public host.
        allow_base_mismatch: accept adapters trained on a different base checkpoint.
    Returns:
        a :class:`sansa_cli.core.segmenter.SansaModel`.
    """
    from sansa_cli.artifacts.adapter_file import attach_adapters, read_adapter_info
    from sansa_cli.core.sam2_base import (
        DEFAULT_SAM2, STOCK_MODELS, VIDEO_PREDICTOR_SETTINGS, build_sam2, load_checkpoint,
        resolve_base,
    )
    from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
    from sansa_cli.core.device import autocast, resolve_device
    from sansa_cli.core.segmenter import SansaModel

    torch_device = resolve_device(device)
    if batch_size is None:
        batch_size = 1 if torch_device.type == "cpu" else 4
    if batch_size < 1:
        raise UserInputError(f"batch size {batch_size} must be at least 1")
    autocast(torch_device, precision)  # validates the precision name early
    info = read_adapter_info(adapters) if adapters is not None else None
    overrides = dict(VIDEO_PREDICTOR_SETTINGS)
    if info is not None:
        overrides.update(info.base_overrides)
    spec = resolve_base(sam2 or (info.base_model if info else DEFAULT_SAM2), overrides)
    ckpt = sam2_checkpoint(spec, checkpoint, download=download)
    sam = build_sam2(spec, "cpu")
    load_checkpoint(sam, ckpt)
    strategy = None
    if info is not None:
        named = sam2 if sam2 in STOCK_MODELS else None  # a stock name given by the user
        strategy = attach_adapters(sam, adapters, info, ckpt, allow_base_mismatch,
                                   base_model=named)
    sam = sam.to(torch_device).eval()
    resize = info.extra.get("image_resize", "pil-bicubic") if info else "pil-bicubic"
    return SansaModel(sam, torch_device, str(getattr(precision, "value", precision)), resize,
                      strategy, spec.name, batch_size)
