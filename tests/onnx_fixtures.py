"""Helpers for the ONNX tests: seeded adapter files for the tiny SAM2, a scene of references and
targets, one export per process and adapter file (the dynamo export of the five graphs takes
tens of seconds), parity measures, and a Python with torch made unimportable."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from tests.conftest import TINY_YAML, blob_image, blob_mask, build_tiny

TINY = str(TINY_YAML)

# A meta-path finder that refuses torch and everything built on it, installed before any import.
NO_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "sam2", "hydra", "torchvision", "safetensors"):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def adapter_file(path: Path, name: str = "adaptformer", seed: int = 7) -> Path:
    """An adapter file of strategy ``name`` for the tiny SAM2 with seeded random weights."""
    from sansa_cli.adapters.base import apply_strategy, build_strategy
    from sansa_cli.artifacts.adapter_file import AdapterInfo, save_adapter_file

    strategy = build_strategy(name, {"adaptformer": {"bottleneck": 0.5}}.get(name))
    trainable = apply_strategy(build_tiny(), strategy)
    gen = torch.Generator().manual_seed(seed)
    tensors = {key: torch.randn(p.shape, generator=gen) * 0.1
               for key, p in sorted(trainable.items())}
    return save_adapter_file(path, tensors, AdapterInfo(name, strategy.config_dict(), TINY))


def checkpoint(folder: Path) -> Path:
    path = folder / "tiny.pt"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"model": build_tiny().state_dict()}, path)
    return path


def scene(folder: Path) -> dict:
    """Three references (image, mask) of different sizes, prompts on them, four targets."""
    from sansa_cli.core.prompts import Box, Points, Scribble

    sizes = [(96, 80), (64, 64), (120, 90)]
    refs = [(blob_image(folder / f"ref{i}.png", s, seed=i),
             blob_mask(folder / f"ref{i}_mask.png", s)) for i, s in enumerate(sizes)]
    strokes = np.zeros((90, 120), bool)
    strokes[40:44, 30:70] = True
    targets = [blob_image(folder / "targets" / f"t{i}.png", s, seed=10 + i,
                          center=(s[0] * 0.6, s[1] * 0.4))
               for i, s in enumerate([(96, 80), (50, 70), (128, 128), (80, 96)])]
    prompts = {"box": (refs[0][0], Box(20, 18, 60, 60)),
               "points": (refs[1][0], Points(((25.0, 30.0), (30.0, 34.0)), ((2.0, 2.0),))),
               "scribble": (refs[2][0], Scribble(strokes))}
    return {"refs": refs, "targets": targets, "prompts": prompts}


def references(case: str, where: dict) -> list:
    """The references of a parity case: ``mask`` or a prompt kind, K = 1 or 3."""
    kind, shots = case.rsplit("-k", 1)
    if kind == "mask":
        return where["refs"][:int(shots)]
    first = where["prompts"][kind]
    return [first] + where["refs"][1:int(shots)]


@functools.cache
def export_tiny(folder: Path, adapters: str = "none") -> Path:
    """``folder/onnx``: the tiny SAM2 (with ``adapters``) exported, once per process."""
    from sansa_cli.onnx.export import export_onnx

    out = folder / "onnx"
    export_onnx(out, adapters=adapters, sam2=TINY, sam2_checkpoint=checkpoint(folder))
    return out


def agreement(expected, found) -> tuple[float, int, float]:
    """(pixel agreement, pixels that differ, largest predicted-IoU difference) of two lists of
    predictions of the same targets."""
    same = sum(int((a.mask == b.mask).sum()) for a, b in zip(expected, found))
    total = sum(a.mask.size for a in expected)
    iou = max(abs(a.predicted_iou - b.predicted_iou) for a, b in zip(expected, found))
    return same / total, total - same, iou


def run_without_torch(code: str, cwd: Path) -> dict:
    """Run ``code`` in a fresh Python where torch cannot be imported; it sets ``result`` (a
    JSON-ready value), which is returned."""
    script = (NO_TORCH + code + "\nimport json\n"
              "assert not any(m.split('.')[0] in ('torch', 'sam2') for m in sys.modules)\n"
              "print('RESULT' + json.dumps(result))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])
