"""Two gloo processes under torchrun give the episodes and sums of a single-process run (slow),
and the distributed helpers over a real gloo group (fast: a group of one process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import run_sansa
from tests.torchrun_worker import gloo_threads
from tests.eval_fixtures import episode_rows, eval_roots, model_args, read_results  # noqa: F401

VOLATILE = {"rank", "seconds", "peak_memory_mb", "cached_frames"}


@pytest.mark.slow
def test_two_processes_match_one(eval_roots, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    root, _ = eval_roots["fss1000"]
    args = ["eval", "--dataset", "fss1000", "--data-root", str(root), "--shots", "1,2",
            "--episodes-per-fold", "5", "--prompt", "mixed", "--cache-mb", "1",
            *map(str, model_args(tiny_checkpoint))]
    single, double = tmp_path / "single", tmp_path / "double"
    code, _, err = run_sansa([*args, "--out", single], capsys, monkeypatch)
    assert code == 0, err
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(Path(__file__).parent / "torchrun_worker.py"), *args, "--out", str(double)],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mean" in done.stdout  # the table, printed once by rank 0
    assert done.stdout.count("mean") == 1

    rows = {how: episode_rows(out) for how, out in (("single", single), ("double", double))}
    assert {r["rank"] for r in rows["double"]} == {0, 1}  # both processes did episodes

    def stable(row):
        return tuple(sorted((k, str(v)) for k, v in row.items() if k not in VOLATILE))

    assert sorted(map(stable, rows["single"])) == sorted(map(stable, rows["double"]))
    assert (single / "per_class.csv").read_text() == (double / "per_class.csv").read_text()
    a, b = read_results(single), read_results(double)
    assert [(r["miou"], r["fb_iou"]) for r in a["results"]] == \
        [(r["miou"], r["fb_iou"]) for r in b["results"]]
    assert b["settings"]["world_size"] == 2


def _reduce_worker(rank: int, world: int, port: int, queue) -> None:
    import numpy as np

    from sansa_cli.core import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.init("cpu")
    try:
        sums = {"counts": np.arange(6).reshape(2, 3) * (rank + 1), "loss": np.array([0.25 * rank])}
        out = distributed.all_reduce_sums(sums)
        gathered = distributed.gather_to_main(rank * 10)
        shared = distributed.broadcast_from_main("from rank 0" if rank == 0 else "other")
        queue.put((rank, out["counts"].tolist(), out["loss"].tolist(), gathered, shared))
    finally:
        distributed.teardown()


@pytest.mark.slow
def test_helpers_reduce_gather_and_broadcast_over_gloo():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_reduce_worker, args=(2, port, queue), nprocs=2, start_method="spawn")
    results = dict((item[0], item[1:]) for item in (queue.get(timeout=30) for _ in range(2)))
    for rank in (0, 1):
        counts, loss, gathered, shared = results[rank]
        assert counts == [[0, 3, 6], [9, 12, 15]] and loss == [0.25]
        assert shared == "from rank 0"
        assert gathered == ([0, 10] if rank == 0 else None)


def test_helpers_over_a_gloo_group_of_one_process(monkeypatch):
    """The helpers' collective paths (exact int64/float64 sums, gather on rank 0, broadcast)
    run over a real gloo group, here of one process; teardown leaves the group and its
    threads behind (a thread that outlives it can abort a finished torchrun worker)."""
    import socket

    import numpy as np
    import torch._dynamo  # noqa: F401  (imported first, as distributed.init does)
    import torch.distributed as dist

    from sansa_cli.core import distributed

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        big = np.array([2**53 + 1], np.int64)  # exact only if not summed as float64
        out = distributed.all_reduce_sums({"counts": big, "loss": np.array([0.25], np.float32)})
        assert out["counts"].dtype == np.int64 and out["counts"].tolist() == [2**53 + 1]
        assert out["loss"].dtype == np.float64 and out["loss"].tolist() == [0.25]
        assert distributed.gather_to_main({"rank": 0}) == [{"rank": 0}]
        assert distributed.broadcast_from_main(("from rank 0", 1)) == ("from rank 0", 1)
        distributed.barrier()
    finally:
        distributed.teardown()
    assert not dist.is_initialized()
    if os.path.isdir("/proc/self/task"):
        assert gloo_threads() == []
