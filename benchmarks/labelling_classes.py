"""Seconds per target when labelling several classes: all at once vs one class at a time.

(a) sansa's multi-class path (``model.label``): each target is encoded once; memory attention and
    decoding run for all classes in one batch.
(b) one class at a time: ``model.segment`` per class, so every class encodes every target again.
Each class has one mask reference (its memory is computed once in both cases, outside the
timing). Random weights (speed does not depend on the values); prints the measured seconds per
target and the ratio for each number of classes, all in one run.

    python benchmarks/labelling_classes.py --sam2 sam2.1_hiera_tiny --targets 2 --classes 1,3,10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from sansa_cli.core import labelling
from sansa_cli.core.sam2_base import VIDEO_PREDICTOR_SETTINGS, build_sam2, resolve_base
from sansa_cli.core.segmenter import SansaModel


def _image(rng, size=(640, 480)) -> Image.Image:
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8))


def _classes(model: SansaModel, count: int, rng) -> list[labelling.ClassMemory]:
    classes = []
    for c in range(count):
        mask = np.zeros((480, 640), bool)
        mask[40 * (c % 8): 40 * (c % 8) + 200, 50 + 30 * c: 250 + 30 * c] = True
        memory = model.encode_references([(_image(rng), mask)])
        classes.append(labelling.ClassMemory(f"class{c}", memory))
    return classes


def together(model, classes, targets) -> float:
    start = time.perf_counter()
    list(labelling.label(model, classes, targets))
    return (time.perf_counter() - start) / len(targets)


def one_at_a_time(model, classes, targets) -> float:
    start = time.perf_counter()
    for cls in classes:
        list(model.segment(cls.memory, targets))
    return (time.perf_counter() - start) / len(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam2", default="sam2.1_hiera_tiny")
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--classes", default="1,3,10")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sam = build_sam2(resolve_base(args.sam2, VIDEO_PREDICTOR_SETTINGS))
    model = SansaModel(sam, "cpu", batch_size=1)
    rng = np.random.default_rng(0)
    print(f"{args.sam2} at {sam.image_size}px, {args.targets} targets of 640x480, "
          f"{torch.get_num_threads()} threads, fp32, CPU")
    for count in (int(s) for s in args.classes.split(",")):
        classes = _classes(model, count, rng)
        targets = [_image(rng) for _ in range(args.targets)]
        a = together(model, classes, targets)
        b = one_at_a_time(model, classes, targets)
        print(f"{count} classes: together {a:.2f} s/target | one at a time {b:.2f} s/target | "
              f"ratio {b / a:.2f}x")


if __name__ == "__main__":
    main()
