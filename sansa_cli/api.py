"""The Python API: ``load_model`` gives a ready few-shot model.

>>> from sansa_cli import load_model
>>> model = load_model(sam2="sam2.1_hiera_large", adapters="adapters.safetensors", device="auto")
>>> results = model.predict(references=[("ref.jpg", "ref_mask.png")], targets=["a.jpg", "b.jpg"])
"""

from __future__ import annotations

from pathlib import Path

from sansa_cli.errors import UserInputError


def load_model(sam2: str | None = None, checkpoint: str | Path | None = None,
               adapters: str | Path | None = None, device: str = "auto",
               precision: str = "fp32", batch_size: int | None = None, download: bool = True,
               allow_base_mismatch: bool = False, resize: str | None = None):
    """Build SAM2, load its checkpoint strictly, layer adapters on it, and wrap it for inference.

    Args:
        sam2: stock SAM2 name or a SAM2 YAML path. Default: the adapter file's base model, else
            ``sam2.1_hiera_large``.
        checkpoint: SAM2 checkpoint; default ``checkpoints/<name>.pt`` (downloaded if missing).
        adapters: an adapter ``.safetensors`` file, or None for frozen SAM2.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast).
        batch_size: how many frames go through the image encoder at once (default: 1 on the
            CPU, where larger batches measured no faster, and 4 on accelerators).
        download: fetch a missing stock checkpoint from Meta's public host.
        allow_base_mismatch: accept adapters trained on a different base checkpoint.
        resize: how images are resized to the model's size (``pil-bicubic`` or
            ``antialias-bilinear``); default: what the adapter file records, else
            ``pil-bicubic`` (SAM2's video predictor).
    Returns:
        a :class:`sansa_cli.core.segmenter.SansaModel`.
    """
    from sansa_cli.core.assemble import build_model
    from sansa_cli.core.choices import DEFAULT_RESIZE
    from sansa_cli.core.device import check_precision, resolve_device
    from sansa_cli.core.images import check_resize
    from sansa_cli.core.segmenter import SansaModel

    torch_device = resolve_device(device)
    if batch_size is None:
        batch_size = 1 if torch_device.type == "cpu" else 4
    if batch_size < 1:
        raise UserInputError(f"batch size {batch_size} must be at least 1")
    check_precision(precision)
    if resize is not None:
        check_resize(resize)
    built = build_model(sam2, checkpoint=checkpoint, download=download, adapters=adapters,
                        device=torch_device, allow_base_mismatch=allow_base_mismatch)
    recorded = built.adapter_info.extra.get("image_resize") if built.adapter_info else None
    return SansaModel(built.sam, torch_device, precision, resize or recorded or DEFAULT_RESIZE,
                      built.strategy, built.spec.name, batch_size)
