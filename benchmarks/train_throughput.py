"""Training throughput (episodes/s) and peak memory of the pseudo-reference chain.

One training step = the chain of ``sansa train`` (one annotated reference + J targets, each
prediction written to memory, BCE+Dice), backward, and an AdamW step on the adapters only, at
the model's native size. Random weights and synthetic frames (speed and memory do not depend
on the values). Each J runs in a fresh process so its peak memory is its own; the parent
prints one line per J and the ratio between them.

    python benchmarks/train_throughput.py --sam2 sam2.1_hiera_tiny --seq-lens 1,3 --steps 3

Peak memory is the process's peak resident set (CPU) or ``max_memory_allocated`` (CUDA).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def _peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def one(args) -> dict:
    """Measure one J in this process; returns the figures as a dict."""
    import torch

    from sansa_cli.adapters.base import apply_strategy, build_strategy
    from sansa_cli.core.sam2_base import VIDEO_PREDICTOR_SETTINGS, build_sam2, resolve_base
    from sansa_cli.core.device import autocast, resolve_device
    from sansa_cli.train.chain import EpisodeChain
    from sansa_cli.train.setup import frozen_mode

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sam = build_sam2(resolve_base(args.sam2, VIDEO_PREDICTOR_SETTINGS))
    trainable = apply_strategy(sam, build_strategy(args.adapter, {"bottleneck": args.bottleneck}))
    sam = sam.to(device)
    frozen_mode(sam)
    chain = EpisodeChain(sam, "bce-dice")
    optimizer = torch.optim.AdamW(list(trainable.values()), lr=1e-4)
    size, j, batch = int(sam.image_size), args.seq_len, args.batch_size
    mask = torch.zeros(batch, 1, size, size)
    mask[..., size // 4: size // 2, size // 4: 3 * size // 4] = 1.0
    target = torch.zeros(batch, j, size, size)
    target[..., size // 3: 2 * size // 3, size // 4: 3 * size // 4] = 1.0
    episode = {"images": torch.randn(batch, 1 + j, 3, size, size),
               "reference_mask": mask, "target": target, "valid": torch.ones_like(target)}
    episode = {k: v.to(device) for k, v in episode.items()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    resident = _peak_mb(device)  # model and inputs, before any step

    def step() -> None:
        with autocast(device, args.precision):
            loss = chain(**episode).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (allocator, lazy inits)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / args.steps
    return {"seq_len": j, "size": size, "seconds_per_step": seconds,
            "episodes_per_s": batch / seconds, "images_per_s": batch * (1 + j) / seconds,
            "peak_mb": _peak_mb(device), "before_steps_mb": resident,
            "trainable": sum(p.numel() for p in trainable.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam2", default="sam2.1_hiera_tiny")
    parser.add_argument("--adapter", default="adaptformer")
    parser.add_argument("--bottleneck", type=float, default=0.3)
    parser.add_argument("--seq-lens", default="1,3", help="values of J to measure")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--batch-size", type=int, default=1, help="episodes per step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--seq-len", type=int, help=argparse.SUPPRESS)  # one child's J
    args = parser.parse_args()
    if args.seq_len is not None:
        print(json.dumps(one(args)))
        return
    rows = []
    for j in (int(s) for s in args.seq_lens.split(",")):
        child = [sys.executable, __file__, *sys.argv[1:], "--seq-len", str(j)]
        done = subprocess.run(child, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = rows[0]
    print(f"{args.sam2} + {args.adapter} {args.bottleneck} ({first['trainable']:,} trainable) at "
          f"{first['size']}px, batch {args.batch_size}, {args.threads} threads, "
          f"{args.precision}, {args.device}, {args.steps} timed steps each")
    for row in rows:
        print(f"J={row['seq_len']}: {row['seconds_per_step']:.2f} s/step | "
              f"{row['episodes_per_s']:.3f} episodes/s | {row['images_per_s']:.3f} images/s | "
              f"peak {row['peak_mb']:.0f} MB ({row['before_steps_mb']:.0f} MB before the "
              f"first step)")
    for row in rows[1:]:
        print(f"J={row['seq_len']} vs J={first['seq_len']}: "
              f"{row['seconds_per_step'] / first['seconds_per_step']:.2f}x time per step, "
              f"{row['peak_mb'] / first['peak_mb']:.2f}x peak memory")


if __name__ == "__main__":
    main()
