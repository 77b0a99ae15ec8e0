"""`sansa predict` on a folder of photos, end to end: images/s, peak memory, model busy time.

Each configuration runs the real command in a fresh process on a folder of photo-like JPEGs
(smooth gradients, shapes and grain: they decode and compress like photos, unlike noise), and
prints:

- images/s: targets divided by the process's wall time from model loaded to last file written;
- peak RSS of the process (its ``VmHWM``), so memory growth with the number of targets shows;
- model busy: the fraction of that time spent in the image encoder, memory attention and mask
  decoder (everything else is reading, resizing, upsampling and writing).

It compares ``--workers 0`` (everything one after the other) with the default workers, for
the tiny test model and SAM 2.1 Hiera-T (random weights: speed does not depend on them), one
class (a mask reference) and several (a YAML class list), all in one run. ``--baseline-src``
adds the same commands run with another checkout of sansa (e.g. the release before this one)
on ``PYTHONPATH``, for an end-to-end comparison with older code.

    python benchmarks/folder_throughput.py --targets 20,120 --models tiny --classes 1
    python benchmarks/folder_throughput.py --targets 8 --models hiera_t --classes 1,3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
TINY_YAML = REPO / "tests" / "data" / "tiny_sam2.yaml"

# Runs inside each measured process: time the model's own calls, then run the CLI.
PROBE = """
import json, sys, time
from sansa_cli.core import labelling, segmenter
busy = [0.0, None]
def timed(fn):
    def run(*a, **k):
        t = time.perf_counter()
        if busy[1] is None:
            busy[1] = t
        try:
            return fn(*a, **k)
        finally:
            busy[0] += time.perf_counter() - t
    return run
model = segmenter.SansaModel
model.encode_images = timed(model.encode_images)  # the references (both versions)
if hasattr(model, "decode"):  # this version
    model.encode_prepared = timed(model.encode_prepared)
    model.decode = timed(model.decode)
    labelling.decode_classes = timed(labelling.decode_classes)
else:  # older versions (upsampling counted as model time there)
    model.segment_features = timed(model.segment_features)
    labelling._class_logits = timed(labelling._class_logits)
from sansa_cli.cli.app import main
report = sys.argv[1]
sys.argv = ["sansa", *sys.argv[2:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
end = time.perf_counter()
peak = None
try:  # this process's own high-water mark (ru_maxrss would include the parent's, from before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
except OSError:
    pass
json.dump({"busy": busy[0], "since_first": end - (busy[1] or end), "code": code,
           "peak_mb": peak}, open(report, "w"))
"""


def photo(path: Path, size=(2048, 1536), seed: int = 0) -> None:
    """A photo-like JPEG: gradients, soft shapes and sensor grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w * 200 + 30, y / h * 180 + 40, (x + y) / (w + h) * 150 + 60], -1)
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.integers(0, w - 200), rng.integers(0, h - 200)
        r = int(rng.integers(60, 400))
        draw.ellipse((x0, y0, x0 + r, y0 + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    img = img.filter(ImageFilter.GaussianBlur(3))
    grain = rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(np.asarray(img) + grain, 0, 255).astype(np.uint8))
    img.save(path, quality=90)


def scene(folder: Path, count: int, classes: int) -> tuple[list[str], Path]:
    """Targets and references: (reference arguments, target folder)."""
    targets = folder / f"targets{count}"
    targets.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        if not (targets / f"img{i:04d}.jpg").exists():
            photo(targets / f"img{i:04d}.jpg", seed=i)
    refs = folder / "refs"
    refs.mkdir(exist_ok=True)
    entries = []
    for c in range(classes):
        image, mask = refs / f"ref{c}.jpg", refs / f"ref{c}_mask.png"
        photo(image, (1024, 768), seed=1000 + c)
        m = np.zeros((768, 1024), np.uint8)
        m[100 + 60 * c: 400 + 60 * c, 150 + 80 * c: 500 + 80 * c] = 255
        Image.fromarray(m).save(mask)
        entries.append((image, mask))
    if classes == 1:
        return [str(entries[0][0]), str(entries[0][1])], targets
    listing = folder / f"classes{classes}.yaml"
    listing.write_text("classes:\n" + "".join(
        f"  - name: class{c}\n    references:\n      - image: {image}\n        mask: {mask}\n"
        for c, (image, mask) in enumerate(entries)))
    return ["--references", str(listing)], targets


def model_args(name: str, folder: Path) -> list[str]:
    """The tiny test model or Hiera-T, with a random checkpoint written once."""
    import torch

    from sansa_cli.core.sam2_base import VIDEO_PREDICTOR_SETTINGS, build_sam2, resolve_base

    base = str(TINY_YAML) if name == "tiny" else "sam2.1_hiera_tiny"
    checkpoint = folder / f"{name}.pt"
    if not checkpoint.exists():
        torch.manual_seed(0)
        sam = build_sam2(resolve_base(base, VIDEO_PREDICTOR_SETTINGS))
        torch.save({"model": sam.state_dict()}, checkpoint)
    return ["--sam2", base, "--sam2-checkpoint", str(checkpoint), "--adapters", "none",
            "--device", "cpu", "--precision", "fp32"]


def measure(command: list[str], source: Path, report: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", PROBE, str(report), *command], env=env,
                            cwd=report.parent,  # not this checkout: PYTHONPATH decides
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if not report.exists():
        raise SystemExit(f"sansa crashed: {err.strip()[-2000:]}")
    probe = json.loads(report.read_text())
    report.unlink()
    if probe["code"] not in (0, None):
        raise SystemExit(f"sansa failed: {err.strip()}")
    peak = probe.pop("peak_mb") or usage.ru_maxrss / 1024  # VmHWM where Linux gives it
    return {"wall": wall, "rss_mb": peak, **probe}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="20,120", help="numbers of targets, comma list")
    parser.add_argument("--models", default="tiny", help="tiny and/or hiera_t")
    parser.add_argument("--classes", default="1", help="numbers of classes, comma list")
    parser.add_argument("--workers", default="0,default", help="worker settings to compare")
    parser.add_argument("--baseline-src", type=Path, help="another sansa checkout to compare")
    parser.add_argument("--folder", type=Path, help="keep the photos here (default: temporary)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="sansa-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"photos 2048x1536 JPEG, CPU with {os.cpu_count()} cores, fp32; "
          f"workers default = {min(4, os.cpu_count() or 1)}")
    print("model    classes targets  code        workers   images/s  peak RSS MB  model busy")
    for name in args.models.split(","):
        margs = model_args(name, folder)
        for classes in (int(c) for c in args.classes.split(",")):
            for count in (int(n) for n in args.targets.split(",")):
                refs, targets = scene(folder, count, classes)
                runs = [("this", REPO, w) for w in args.workers.split(",")]
                if args.baseline_src:
                    runs.insert(0, ("baseline", args.baseline_src.resolve(), None))
                for label, source, workers in runs:
                    out = folder / f"out-{name}-{classes}-{count}-{label}-{workers}"
                    command = ["predict", *refs, str(targets), "--out", str(out), *margs]
                    if workers not in (None, "default"):
                        command += ["--workers", workers]
                    r = measure(command, source, folder / "probe.json")
                    print(f"{name:8s} {classes:7d} {count:7d}  {label:10s} {workers or '-':>8s}"
                          f"  {count / r['since_first']:8.2f}  {r['rss_mb']:11.0f}"
                          f"  {r['busy'] / r['since_first']:9.0%}", flush=True)


if __name__ == "__main__":
    main()
