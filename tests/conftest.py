"""Shared fixtures: a tiny SAM2 with random weights, its checkpoint, and small images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)

TINY_YAML = Path(__file__).parent / "data" / "tiny_sam2.yaml"


def build_tiny(seed: int = 0, overrides: dict | None = None):
    """The tiny SAM2 in eval mode, with seeded random weights (every parameter non-zero).

    Its settings are those every sansa build uses: SAM2's video-predictor settings, then
    ``overrides`` (dotted config keys, e.g. an adapter file's base settings) on top.
    """
    from sansa_cli.core.sam2_base import VIDEO_PREDICTOR_SETTINGS, build_sam2, resolve_base

    torch.manual_seed(seed)
    spec = resolve_base(str(TINY_YAML), {**VIDEO_PREDICTOR_SETTINGS, **(overrides or {})})
    sam = build_sam2(spec, "cpu")
    # Random init leaves some zero-initialised parameters (tpos encodings, no-object pointers);
    # perturb everything slightly so no path is trivially dead.
    with torch.no_grad():
        for p in sam.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        # Random weights would call the object absent about half the time, which blanks the
        # mask; make the object-presence head say "present" so masks carry information.
        head = getattr(sam.sam_mask_decoder, "pred_obj_score_head", None)
        if head is not None:
            last = head.layers[-1] if hasattr(head, "layers") else head
            last.bias.fill_(4.0)
    return sam


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """sansa's cache (checkpoint hashes) in a temporary folder, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SANSA_CACHE", str(tmp_path_factory.mktemp("sansa-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the tiny SAM2 in the stock layout ({'model': state_dict})."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save({"model": build_tiny().state_dict()}, path)
    return path


@pytest.fixture()
def tiny_model_args(tiny_checkpoint) -> list:
    """The command-line options that select the tiny SAM2 and its checkpoint on the CPU, in
    fp32 (``auto`` would pick bf16 on a CPU with native bf16: results would depend on it)."""
    return ["--sam2", TINY_YAML, "--sam2-checkpoint", tiny_checkpoint, "--device", "cpu",
            "--precision", "fp32"]


def blob_image(path: Path, size=(96, 80), seed=0, center=None) -> Path:
    """A textured RGB picture with a bright disc (the object) on it."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = center or (w * 0.4, h * 0.5)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(w, h) * 0.25) ** 2
    img = rng.integers(0, 90, size=(h, w, 3), dtype=np.uint8)
    img[disc] = (220, 60, 40)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def blob_mask(path: Path, size=(96, 80), center=None) -> Path:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = center or (w * 0.4, h * 0.5)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(w, h) * 0.25) ** 2
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((disc * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture()
def scene(tmp_path) -> dict:
    """Three references (image + mask) and four targets of various sizes on disk."""
    refs = []
    for i, size in enumerate([(96, 80), (64, 64), (120, 90)]):
        refs.append((blob_image(tmp_path / f"ref{i}.png", size, seed=i),
                     blob_mask(tmp_path / f"ref{i}_mask.png", size)))
    targets = [blob_image(tmp_path / "targets" / f"t{i}.png", size, seed=10 + i,
                          center=(size[0] * 0.6, size[1] * 0.4))
               for i, size in enumerate([(96, 80), (50, 70), (128, 128), (80, 96)])]
    return {"refs": refs, "targets": targets, "dir": tmp_path}
