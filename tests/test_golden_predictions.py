"""Predictions on the tiny model do not change with refactoring.

``data/golden_predictions.npz`` holds masks, low-resolution logits and predicted IoUs written by
the code before the architecture change (the same scenario as below: the tiny SAM2 of
``build_tiny()``, a seeded AdaptFormer adapter file, mask / box / points / scribble references,
K = 1 and 3, frozen and adapted). On the machine that wrote it, masks and logits are identical
to the bit; on another CPU, float noise may move logits by 1e-4 at most and flip only pixels whose
logit is that close to 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY_YAML, blob_image, blob_mask, build_tiny

GOLDEN = Path(__file__).parent / "data" / "golden_predictions.npz"


def _adapter_file(path: Path) -> Path:
    from sansa_cli.adapters.adaptformer import AdaptFormer
    from sansa_cli.adapters.base import apply_strategy
    from sansa_cli.artifacts.adapter_file import AdapterInfo, save_adapter_file

    strategy = AdaptFormer(AdaptFormer.Config(bottleneck=0.5))
    trainable = apply_strategy(build_tiny(), strategy)
    tensors = {name: torch.randn(p.shape, generator=torch.Generator().manual_seed(7 + i)) * 0.1
               for i, (name, p) in enumerate(sorted(trainable.items()))}
    info = AdapterInfo("adaptformer", {"bottleneck": 0.5, "stages": [2, 3], "scale": 0.1},
                       str(TINY_YAML))
    return save_adapter_file(path, tensors, info)


def _cases(tmp: Path):
    from sansa_cli.core.prompts import Box, Points, Scribble

    refs = [(blob_image(tmp / f"ref{i}.png", s, seed=i), blob_mask(tmp / f"ref{i}_mask.png", s))
            for i, s in enumerate([(96, 80), (64, 64), (120, 90)])]
    targets = [blob_image(tmp / f"t{i}.png", s, seed=10 + i, center=(s[0] * 0.6, s[1] * 0.4))
               for i, s in enumerate([(96, 80), (50, 70), (128, 128), (80, 96)])]
    strokes = np.zeros((90, 120), bool)
    strokes[40:44, 30:70] = True
    cases = {
        "k1": [refs[0]],
        "k3": refs,
        "box": [(refs[0][0], Box(20, 18, 60, 60))],
        "points": [(refs[1][0], Points(((25.0, 30.0), (30.0, 34.0)), ((2.0, 2.0),)))],
        "mixed": [(refs[2][0], Scribble(strokes)), refs[1]],
    }
    return cases, targets


def _same_mask(mask: np.ndarray, golden: np.ndarray, golden_logits: np.ndarray, where) -> None:
    """Bit-identical masks (as on the machine that wrote the file); on another CPU, float noise
    may only flip pixels whose logit is within 1e-4 of the threshold."""
    import torch.nn.functional as F

    if np.array_equal(mask, golden):
        return
    logits = torch.from_numpy(golden_logits)[None, None]
    full = F.interpolate(logits, size=mask.shape, mode="bilinear", align_corners=False)[0, 0]
    undecided = full.abs().numpy() < 1e-4
    assert np.array_equal(mask[~undecided], golden[~undecided]), where


def test_predictions_are_those_of_the_code_before_the_refactoring(tmp_path):
    from sansa_cli import load_model

    golden = np.load(GOLDEN)
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"model": build_tiny().state_dict()}, checkpoint)
    adapter = _adapter_file(tmp_path / "adapter.safetensors")
    cases, targets = _cases(tmp_path)
    compared = 0
    for adapted in (True, False):
        model = load_model(sam2=str(TINY_YAML), sam2_checkpoint=checkpoint,
                           adapters=adapter if adapted else "none", device="cpu")
        for name, references in cases.items():
            if not adapted and name not in ("k1", "box"):
                continue
            key = f"{'adapted' if adapted else 'frozen'}_{name}"
            for j, result in enumerate(model.predict(references, targets)):
                _same_mask(result.mask, golden[f"{key}_{j}_mask"],
                           golden[f"{key}_{j}_logits"], (key, j))
                np.testing.assert_allclose(result.low_res_logits, golden[f"{key}_{j}_logits"],
                                           rtol=0, atol=1e-4)
                assert result.predicted_iou == pytest.approx(float(golden[f"{key}_{j}_iou"]),
                                                              abs=1e-6)
                compared += 1
    assert compared == 4 * 7
