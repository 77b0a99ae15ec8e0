"""The names users choose from, defined once (cheap to import: the CLI builds its enums here).

Nothing in this module imports torch, numpy or sam2, so ``sansa --help`` stays fast.
"""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")
#: autocast precisions of inference
PRECISIONS = ("fp32", "bf16", "fp16")
#: what users choose from: ``auto`` picks by hardware (see core.device.resolve_precision)
PRECISION_CHOICES = ("auto", *PRECISIONS)
#: how a reference is marked: its mask, or a prompt drawn from it (``mixed``: one at random)
PROMPT_TYPES = ("mask", "point", "box", "scribble", "mixed")
#: square resize of images to the model's input size: SAM2's video predictor (PIL bicubic) or
#: the SANSA authors' release (bilinear with antialiasing on tensors)
RESIZE_MODES = ("pil-bicubic", "antialias-bilinear")
DEFAULT_RESIZE = "pil-bicubic"
#: storage precision of adapter files
STORAGE_DTYPES = ("fp32", "fp16", "bf16")
#: short names of the SAM 2.1 stock models, as ``--sam2 tiny``
SAM2_SHORT_NAMES = ("tiny", "small", "base_plus", "large")


def expand_sam2_name(name: str) -> str:
    """``tiny|small|base_plus|large`` -> the SAM 2.1 stock name (``sam2.1_hiera_tiny``, ...);
    any other value (a stock name, a YAML path) is returned unchanged."""
    return f"sam2.1_hiera_{name}" if name in SAM2_SHORT_NAMES else name
