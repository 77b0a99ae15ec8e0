"""Seconds per target: reference memory cached once vs the whole pseudo-video per target.

(a) sansa's path: encode the K references once, then only the targets (in batches).
(b) recompute: for every target run the whole pseudo-video again (K references + target),
    as the authors' release and a plain SAM2VideoPredictor loop do.
Random weights (no checkpoint needed: speed does not depend on the values). Prints the
measured seconds per target and the ratio, for each K.

    python benchmarks/cached_references.py --sam2 sam2.1_hiera_tiny --targets 4 --shots 1,5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from sansa_cli.core.sam2_base import VIDEO_PREDICTOR_SETTINGS, build_sam2, resolve_base
from sansa_cli.core.segmenter import SansaModel


def _scene(k: int, n: int, size=(640, 480)):
    rng = np.random.default_rng(0)
    mask = np.zeros(size[::-1], bool)
    mask[100:300, 150:400] = True
    image = lambda: Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), np.uint8))  # noqa: E731
    return [(image(), mask) for _ in range(k)], [image() for _ in range(n)]


def cached(model: SansaModel, refs, targets, batch_size: int) -> float:
    start = time.perf_counter()
    memory = model.encode_references(refs)
    list(model.segment(memory, targets, batch_size=batch_size))
    return (time.perf_counter() - start) / len(targets)


def recompute(model: SansaModel, refs, targets) -> float:
    start = time.perf_counter()
    for target in targets:  # a fresh pseudo-video per target: K + 1 encoder passes each
        model.predict(refs, [target], batch_size=1)
    return (time.perf_counter() - start) / len(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam2", default="sam2.1_hiera_tiny")
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sam = build_sam2(resolve_base(args.sam2, VIDEO_PREDICTOR_SETTINGS))
    model = SansaModel(sam, "cpu", batch_size=args.batch_size)
    print(f"{args.sam2} at {sam.image_size}px, {args.targets} targets, "
          f"{torch.get_num_threads()} threads, fp32, CPU")
    for k in (int(s) for s in args.shots.split(",")):
        refs, targets = _scene(k, args.targets)
        a = cached(model, refs, targets, args.batch_size)
        b = recompute(model, refs, targets)
        print(f"K={k}: cached {a:.2f} s/target | recompute {b:.2f} s/target | "
              f"speed-up {b / a:.2f}x")


if __name__ == "__main__":
    main()
