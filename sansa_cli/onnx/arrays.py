"""sansa's image and mask preparation in numpy, for the torch-free runtime.

Each function computes what its torch counterpart in :mod:`sansa_cli.core.images` and
:mod:`sansa_cli.core.pseudo_video` computes, in the same float32 operations and order: the
antialiased bilinear resize of ``F.interpolate(..., antialias=True)`` (weights of the triangle
filter stretched by the scale, width first, then height), the plain bilinear resize of
``F.interpolate(..., mode="bilinear", align_corners=False)``, PIL's bicubic resize (PIL itself)
and the bf16 rounding of ``tensor.to(torch.bfloat16)``. Only numpy and Pillow are imported.

torch's CPU kernels are compiled with fused multiply-adds (one rounding for ``a * b + c``) on
CPUs that have them; the antialiased taps and the bilinear source positions are computed the
same way here (through float64, which holds the exact product), so a reference mask resized
here equals torch's to the bit on such CPUs, and within one float32 step (1.2e-7) elsewhere.
Upsampled logits may differ from torch's by float noise (1e-6): only pixels whose logit is that
close to 0 can change side.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
_F = np.float32


def _aa_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output index: the first input index and the taps' weights [out, taps] (zero-padded),
    as torch's antialiased linear interpolation computes them in float32."""
    scale = _F(in_size) / _F(out_size)
    support = scale if scale >= 1.0 else _F(1.0)
    invscale = _F(1.0 / float(scale)) if scale >= 1.0 else _F(1.0)
    taps = int(np.ceil(support)) * 2 + 1
    starts = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, taps), np.float32)
    for i in range(out_size):
        center = _F(float(scale) * (i + 0.5))
        first = max(int(float(center - support) + 0.5), 0)
        count = min(int(float(center + support) + 0.5), in_size) - first
        count = min(max(count, 0), taps)
        x = np.array([_F(_F(j + first) - center) for j in range(count)], np.float32)
        x = ((x.astype(np.float64) + 0.5) * float(invscale)).astype(np.float32)
        w = (1.0 - np.abs(x).astype(np.float64)).astype(np.float32)
        w[np.abs(x) >= 1.0] = 0.0
        total = _F(0.0)
        for value in w:
            total = _F(total + value)
        if total != 0.0:
            w = w / total
        starts[i] = first
        weights[i, :count] = w
    return starts, weights


def _aa_resize_axis(x: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """Antialiased linear resize of one axis of a float32 array (torch's sequential sum)."""
    x = np.moveaxis(x, axis, -1)
    in_size = x.shape[-1]
    starts, weights = _aa_weights(in_size, out_size)
    index = np.minimum(starts[:, None] + np.arange(weights.shape[1]), in_size - 1)
    taps = x[..., index]  # [..., out, taps]
    out = taps[..., 0] * weights[:, 0]
    for j in range(1, weights.shape[1]):  # fused multiply-add: one rounding per tap
        out = (taps[..., j].astype(np.float64) * weights[:, j] + out).astype(np.float32)
    return np.moveaxis(out, -1, axis)


def resize_antialias(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """``F.interpolate(x, (height, width), mode="bilinear", align_corners=False,
    antialias=True)`` of a float32 array [..., H, W]."""
    x = np.asarray(x, np.float32)
    if x.shape[-1] != width:
        x = _aa_resize_axis(x, width, x.ndim - 1)
    if x.shape[-2] != height:
        x = _aa_resize_axis(x, height, x.ndim - 2)
    return x


def _linear_indices(in_size: int, out_size: int):
    scale = _F(in_size) / _F(out_size)
    centres = np.arange(out_size).astype(np.float32) + _F(0.5)
    real = (float(scale) * centres.astype(np.float64) - 0.5).astype(np.float32)  # fused
    real = np.maximum(real, _F(0.0))
    first = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    second = first + (first < in_size - 1)
    lam1 = np.clip(real - first.astype(np.float32), _F(0.0), _F(1.0)).astype(np.float32)
    return first, second, (_F(1.0) - lam1).astype(np.float32), lam1


def resize_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """``F.interpolate(x, (height, width), mode="bilinear", align_corners=False)`` of a
    float32 array [..., H, W] (how sansa upsamples mask logits)."""
    x = np.asarray(x, np.float32)
    h0, h1, a0, a1 = _linear_indices(x.shape[-2], height)
    w0, w1, b0, b1 = _linear_indices(x.shape[-1], width)
    top = x[..., h0, :]
    bottom = x[..., h1, :]
    t0 = top[..., w0] * b0 + top[..., w1] * b1
    t1 = bottom[..., w0] * b0 + bottom[..., w1] * b1
    return (t0 * a0[:, None] + t1 * a1[:, None]).astype(np.float32)


def preprocess(image: Image.Image, size: int, resize: str) -> np.ndarray:
    """An RGB image as the model takes it: [3, size, size] float32, square resize, ImageNet
    normalisation (:func:`sansa_cli.core.images.preprocess`)."""
    if resize == "pil-bicubic":
        image = image.resize((size, size), Image.BICUBIC)
        array = (np.asarray(image, dtype=np.float32) / _F(255.0)).transpose(2, 0, 1)
    elif resize == "antialias-bilinear":
        array = (np.asarray(image, dtype=np.float32) / _F(255.0)).transpose(2, 0, 1)
        array = resize_antialias(array, size, size)
    else:
        raise ValueError(f"unknown resize mode {resize!r}")
    return ((array - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def mask_to_input(mask: np.ndarray, size: int, rule: str) -> np.ndarray:
    """A reference mask as SAM2 takes it: [1, size, size] float32 0/1, antialiased resize
    then ``half`` (>= 0.5) or ``any`` (> 0) (:func:`sansa_cli.core.images.mask_to_input`)."""
    m = np.asarray(mask, np.float32)[None]
    if m.shape[-2:] != (size, size):
        m = resize_antialias(m, size, size)
        m = (m >= 0.5 if rule == "half" else m > 0).astype(np.float32)
    return m


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest, ties to even) and back, as
    ``tensor.to(torch.bfloat16).float()`` does for finite values."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1)))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)
