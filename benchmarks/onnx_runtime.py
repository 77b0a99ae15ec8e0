"""Seconds per target and peak memory: sansa in torch vs its ONNX export in onnxruntime.

SAM2 (default Hiera-T) with random weights (speed does not depend on the values) at its image
size, K mask references, targets of 800x600. Each target is timed per stage: image encoder
(with the image's preparation), memory attention, mask decoder; the median over the targets
after a first warm-up one is printed. Each (runtime, K) runs in a fresh process, so the peak
resident memory it reports is its own ("at refs": after loading and the references; "peak":
after the targets too).

In onnxruntime, memory attention at opset 18 is MatMul, Softmax, MatMul. sansa's export attends
256 queries at a time (:mod:`sansa_cli.onnx.rope`), so each layer holds a [B, heads, 256,
4096 * K] score matrix; ``ort-unblocked`` is memory attention exported with all 4096 queries at
once ([B, heads, 4096, 4096 * K] at 1024 px), ``ort-fused`` the same at opset 23, where the
exporter writes ONNX's own Attention operator.

    python benchmarks/onnx_runtime.py --sam2 sam2.1_hiera_tiny --shots 1,5 --targets 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: runtime -> the memory-attention graph replacing the export's (None: the export's own)
RUNTIMES = {"torch": None, "onnxruntime": None, "ort-unblocked": "condition-unblocked.onnx",
            "ort-fused": "condition-opset23.onnx"}


def _scene(k: int, n: int, size=(800, 600)):
    rng = np.random.default_rng(0)
    mask = np.zeros(size[::-1], bool)
    mask[150:420, 200:560] = True
    image = lambda: Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), np.uint8))  # noqa: E731
    return [(image(), mask) for _ in range(k)], [image() for _ in range(n)]


def _peak_mb() -> float:
    """This process's peak resident memory (Linux's VmHWM: unlike ru_maxrss, it does not
    carry the parent's peak over a fork and exec)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("VmHWM:"))) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _torch_stages(args, refs, targets):
    import torch

    from sansa_cli import load_model
    from sansa_cli.core import pseudo_video as pv

    torch.set_num_threads(args.threads)
    model = load_model(sam2=args.sam2, sam2_checkpoint=args.work / "sam2.pt", adapters="none",
                       device="cpu", batch_size=1)
    memory = model.encode_references(refs)
    at_refs, times = _peak_mb(), []
    with torch.inference_mode():
        for image in targets:
            start = time.perf_counter()
            frames = model.encode_images([image])
            encoded = time.perf_counter()
            conditioned = pv.condition_on_memory(model.sam, frames, memory.frames)
            attended = time.perf_counter()
            pv.decode_target(model.sam, frames, conditioned)
            times.append((encoded - start, attended - encoded, time.perf_counter() - attended))
    return at_refs, times


def _onnx_stages(args, refs, targets, condition: str | None):
    import onnxruntime as ort

    from sansa_cli.onnx_runtime import OnnxSansa

    model = OnnxSansa(args.work / "onnx", threads=args.threads)
    if condition:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        model.sessions["condition"] = ort.InferenceSession(
            str(args.work / condition), options, providers=model.providers)
    memory = model.encode_references(refs)
    at_refs, times = _peak_mb(), []
    for image in targets:
        start = time.perf_counter()
        levels = model.encode_images([image])
        encoded = time.perf_counter()
        (conditioned,) = model.run_graph("condition", levels[-1], memory.features,
                                         memory.obj_ptr)
        attended = time.perf_counter()
        model.run_graph("decoder", conditioned, *levels[:-1])
        times.append((encoded - start, attended - encoded, time.perf_counter() - attended))
    return at_refs, times


def worker(args) -> None:
    """One runtime and K in this process: prints one JSON line."""
    refs, targets = _scene(args.k, args.targets + 1)
    if args.worker == "torch":
        at_refs, times = _torch_stages(args, refs, targets)
    else:
        at_refs, times = _onnx_stages(args, refs, targets, RUNTIMES[args.worker])
    stages = [statistics.median(t[i] for t in times[1:]) for i in range(3)]
    print(json.dumps({"stages": stages, "at_refs_mb": at_refs, "peak_mb": _peak_mb()}))


def prepare(args) -> None:
    """A random-weight checkpoint, the export, and the other memory-attention graphs."""
    import torch

    from sansa_cli.core.sam2_base import VIDEO_PREDICTOR_SETTINGS, build_sam2, resolve_base
    from sansa_cli.onnx.export import export_graph, export_onnx, graph_specs
    from sansa_cli.onnx.rope import real_rope

    if (args.work / "onnx" / "sansa-onnx.json").exists():
        return
    torch.manual_seed(0)
    sam = build_sam2(resolve_base(args.sam2, VIDEO_PREDICTOR_SETTINGS))
    torch.save({"model": sam.state_dict()}, args.work / "sam2.pt")
    start = time.perf_counter()
    export_onnx(args.work / "onnx", adapters="none", sam2=args.sam2,
                sam2_checkpoint=args.work / "sam2.pt")
    print(f"exported in {time.perf_counter() - start:.0f} s", flush=True)
    with torch.no_grad(), real_rope(sam, query_block=None):
        spec = next(s for s in graph_specs(sam) if s.name == "condition")
        export_graph(spec, args.work / RUNTIMES["ort-unblocked"], 18)
        export_graph(spec, args.work / RUNTIMES["ort-fused"], 23)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam2", default="sam2.1_hiera_tiny")
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None,
                        help="Folder for the checkpoint and export (reused when present).")
    parser.add_argument("--worker", choices=list(RUNTIMES), help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    args.work = args.work or Path(tempfile.mkdtemp(prefix="sansa-onnx-bench-"))
    args.work.mkdir(parents=True, exist_ok=True)
    prepare(args)
    print(f"{args.sam2}, {args.targets} targets of 800x600, {args.threads} threads, fp32, CPU "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"{'K':>2} {'runtime':14} {'encoder s':>9} {'mem-attn s':>10} {'decoder s':>9} "
          f"{'at refs MB':>10} {'peak MB':>8}")
    for k in (int(s) for s in args.shots.split(",")):
        for runtime in RUNTIMES:
            command = [sys.executable, __file__, "--worker", runtime, "--k", str(k),
                       "--sam2", args.sam2, "--targets", str(args.targets),
                       "--threads", str(args.threads), "--work", str(args.work)]
            line = subprocess.run(command, check=True, capture_output=True,
                                  text=True).stdout.strip().splitlines()[-1]
            found = json.loads(line)
            enc, att, dec = found["stages"]
            print(f"{k:>2} {runtime:14} {enc:9.2f} {att:10.3f} {dec:9.3f} "
                  f"{found['at_refs_mb']:10.0f} {found['peak_mb']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
