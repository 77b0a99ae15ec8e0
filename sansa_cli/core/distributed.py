"""Small helpers for runs under ``torchrun`` (evaluation and training share them).

``torchrun --nproc_per_node N`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; a plain
``python``/``sansa`` run is rank 0 of a world of 1 and never touches ``torch.distributed``.
The process group uses NCCL when the run is on CUDA and gloo otherwise (CPU, MPS).
Only the main process (rank 0) should write files.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def _initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init(device_type: str = "cpu"):
    """Join the process group when ``WORLD_SIZE > 1``; return this process's device.

    On CUDA each process takes the GPU of its local rank (``cuda:LOCAL_RANK``); elsewhere the
    device type is returned as is. Safe to call twice.
    """
    import torch
    import torch.distributed as dist

    device = torch.device(device_type)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if world_size() > 1 and not _initialized():
        # torch._dynamo, imported lazily by the first optimizer or DDP wrapper, keeps a hold
        # on a process group that already exists when it is imported: the group then
        # survives destroy_process_group and its gloo threads run until the interpreter
        # exits (a finished worker aborted at exit once in CI that way). Imported first, it
        # holds none.
        import torch._dynamo  # noqa: F401

        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend,
                                device_id=device if device.type == "cuda" else None)
    return device


def teardown() -> None:
    """Leave the process group (no-op when none was joined).

    Drop every DistributedDataParallel wrapper before calling this: the group must not outlive
    this call in a DDP reducer, whose release would then destroy it while holding the GIL.
    """
    if _initialized():
        import gc

        import torch.distributed as dist

        gc.collect()  # unreachable wrappers (reference cycles) go while the group is registered
        dist.destroy_process_group()


def barrier() -> None:
    if _initialized():
        import torch.distributed as dist

        dist.barrier()


def all_reduce_sums(sums: dict[str, Any], device=None) -> dict[str, np.ndarray]:
    """Element-wise sum of named arrays over all processes, returned on every process.

    Integer arrays are summed as int64 and floating ones as float64, so merging counts is exact
    (and independent of the order of the processes). Every process must pass the same names
    and shapes.
    """
    import torch

    out = {}
    for name in sorted(sums):
        array = np.asarray(sums[name])
        dtype = torch.float64 if np.issubdtype(array.dtype, np.floating) else torch.int64
        tensor = torch.as_tensor(array).to(dtype)
        if _initialized():
            import torch.distributed as dist

            # NCCL reduces on the GPU only; gloo on the CPU.
            if dist.get_backend() == "nccl":
                tensor = tensor.to(device or torch.device("cuda", local_rank()))
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        out[name] = tensor.cpu().numpy()
    return out


def gather_to_main(value: Any) -> list[Any] | None:
    """Every process's picklable ``value``: a list in rank order on rank 0, None elsewhere."""
    if not _initialized():
        return [value]
    import torch.distributed as dist

    gathered = [None] * world_size() if is_main() else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's picklable ``value`` on every process."""
    if not _initialized():
        return value
    import torch.distributed as dist

    box = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
