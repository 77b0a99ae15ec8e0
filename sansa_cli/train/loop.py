"""The training loop: resumable, interruptible, distributed with DistributedDataParallel."""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sansa_cli.artifacts.train_checkpoint import (
    restore_training_checkpoint,
    save_training_checkpoint,
)
from sansa_cli.core import distributed
from sansa_cli.core.input_profile import SANSA_TRAINING
from sansa_cli.core.device import autocast
from sansa_cli.errors import SansaError
from sansa_cli.train.chain import EpisodeChain
from sansa_cli.train.config import TrainConfig, save_config
from sansa_cli.train.display import TrainDisplay
from sansa_cli.train.episode_data import EpisodeTensors, epoch_episodes, rank_indices
from sansa_cli.train.mixture import MIX
from sansa_cli.train.preflight import LOG_FIX, check_run
from sansa_cli.train.setup import (
    build_parts,
    frozen_mode,
    optimizer_and_schedule,
    resolve_precision,
)


class TrainingDiverged(SansaError, RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class Processes:
    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _no_buffer_sync() -> dict:
    """DDP's option not to re-broadcast buffers every forward (the frozen SAM2's buffers are
    equal on every process): ``forward_sync_buffers`` where torch has it, else the older
    ``broadcast_buffers`` (deprecated in torch 2.14)."""
    import inspect

    params = inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters
    key = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return {key: False}


class Run:
    """One training run in ``out``: call :meth:`train`."""

    def __init__(self, config: TrainConfig, out: Path, resume: bool = False,
                 stop_at_step: int | None = None, quiet: bool = False):
        self.config, self.out, self.resume = config, Path(out), resume
        self.stop_at_step = stop_at_step  # simulates an interruption (tests)
        self.quiet = quiet
        self.stop_signal: int | None = None
        self.validator = None

    def train(self) -> Path:
        """Train to the end (or until interrupted); returns the final adapter file's path."""
        from sansa_cli.core.device import resolve_device

        device = distributed.init(resolve_device(self.config.device).type)
        ctx = Processes(distributed.rank(), distributed.world_size())
        try:
            with self._lock(ctx):  # one run at a time in a run folder
                return self._train(ctx, device)
        finally:
            # The DDP wrapper goes first: if its C++ reducer were the group's last owner, it
            # would destroy the group while holding the GIL and deadlock with the group's
            # worker threads (observed on torch 2.13).
            self.chain = None
            distributed.teardown()

    # -- setup ---------------------------------------------------------------------------------
    def _lock(self, ctx):
        """The run folder's lock, held by the process that writes (rank 0)."""
        import contextlib

        from sansa_cli.artifacts.files import output_lock

        if not ctx.is_main:
            return contextlib.nullcontext()
        return output_lock(self.out, "--resume" if self.resume else "--out")

    def _train(self, ctx, device) -> Path:
        config, out = self.config, self.out
        checkpoints = out / "checkpoints"
        show = ctx.is_main and not self.quiet
        checked = check_run(config, out, self.resume, ctx, show)  # before any download or build
        for warning in checked.warnings if show else ():
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        if show and config.dataset == MIX:
            print(f"training on a {checked.dataset.describe()}", file=sys.stderr, flush=True)
        self.validator = checked.validator
        parts = build_parts(config, ctx, device, checked.dataset)
        self.parts, self.ctx, self.device = parts, ctx, device
        self.precision = resolve_precision(config, device)
        optimizer, scheduler = optimizer_and_schedule(config, parts.trainable, parts.total_steps)
        scaler = torch.amp.GradScaler(device.type) if self.precision == "fp16" else None
        step, best = 0, None
        if self.resume:
            blob = restore_training_checkpoint(
                checkpoints / "latest.pt", trainable=parts.trainable, optimizer=optimizer,
                scheduler=scheduler, scaler=scaler)
            step, best = int(blob["step"]), blob.get("best")
        elif ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(config, out / "config.yaml")
        self.optimizer, self.scheduler, self.scaler, self.best = optimizer, scheduler, scaler, best
        frozen_mode(parts.sam)
        self.chain = EpisodeChain(parts.sam, config.loss)
        if ctx.distributed:  # no local name for the wrapper: train() must be able to drop it
            ids = [device] if device.type == "cuda" else None
            self.chain = torch.nn.parallel.DistributedDataParallel(
                self.chain, device_ids=ids, **_no_buffer_sync())
        if ctx.is_main:
            self._trim_log(step)
        return self._loop(step)

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self, step: int) -> Path:
        parts, config = self.parts, self.config
        display = TrainDisplay(parts.total_steps, step, self.ctx.is_main and not self.quiet,
                               config.progress_seconds)
        left = parts.total_steps - step
        head = f"resuming at step {step}: " if step else ""
        display.message(f"{head}{left} step{_s(left)} to train ({parts.steps_per_epoch} per "
                        f"epoch) on {self.device.type} in {self.precision}; run folder {self.out}")
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while step < parts.total_steps:
                epoch = step // parts.steps_per_epoch
                for batch in _one_line_errors(self._loader(epoch, step % parts.steps_per_epoch)):
                    step = self._step(batch, step, epoch, display)
                    if step >= parts.total_steps or self._should_stop(step):
                        break
                    if config.save_every and step % config.save_every == 0:
                        self._save(step, "latest.pt")
                if self._should_stop(step):
                    self._save(step, "latest.pt")
                    display.message(f"stopped at step {step}; continue with "
                                    f"`sansa train --resume {self.out}`")
                    raise KeyboardInterrupt
                self._validate(step, epoch, display)  # end of an epoch (or of the budget)
                self._save(step, "latest.pt")
            return self._finish(step, display)
        finally:
            display.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _loader(self, epoch: int, first_step: int):
        parts, config, ctx = self.parts, self.config, self.ctx
        episodes = epoch_episodes(parts.dataset, config.seed, epoch, parts.episodes_per_epoch,
                                  config.seq_len)
        indices = rank_indices(first_step, parts.steps_per_epoch, config.batch_size, ctx.rank,
                               ctx.world)
        data = EpisodeTensors(parts.dataset, episodes, indices, int(parts.sam.image_size),
                              SANSA_TRAINING, config.augment, config.seed, epoch, config.prompt)
        return torch.utils.data.DataLoader(data, batch_size=config.batch_size // ctx.world,
                                           shuffle=False, num_workers=config.workers)

    def _step(self, batch: dict, step: int, epoch: int, display: TrainDisplay) -> int:
        start = time.perf_counter()
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with autocast(self.device, self.precision):
            loss = self.chain(**batch).mean()
        self.optimizer.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        summed = distributed.all_reduce_sums({"loss": float(loss.detach())})["loss"]
        mean_loss = float(summed) / self.ctx.world
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(
                f"the loss became {mean_loss} at step {step + 1}; the last good checkpoint "
                f"is kept in {self.out / 'checkpoints'}: resume from it with a lower --lr")
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(self.parts.trainable.values()),
                                           self.config.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        step += 1
        seconds = time.perf_counter() - start
        images = batch["images"].shape[0] * batch["images"].shape[1] * self.ctx.world
        row = {"step": step, "epoch": epoch, "loss": mean_loss, "lr": lr,
               "images_per_s": images / seconds, "seconds": seconds}
        log_now = step % max(self.config.log_every, 1) == 0 or step == self.parts.total_steps
        if self.ctx.is_main:
            self._log(row)
        display.update(step, epoch, row["loss"], lr, row["images_per_s"], log_now)
        return step

    def _validate(self, step: int, epoch: int, display: TrainDisplay) -> None:
        """Score each dataset's validation episodes; keep ``best.pt`` for the best mIoU (of a
        mixture: the mean over its datasets) so far."""
        if not self.config.val_episodes:
            return
        if self.validator is None:
            from sansa_cli.train.validation import Validation

            self.validator = Validation(self.config, self.ctx.rank, self.ctx.world)
        if not self.validator.validators:
            return  # no dataset to validate on (said once, before training)
        scores = self.validator.score(self.parts.sam, self.device, self.precision)
        miou = None if scores is None else sum(scores.values()) / len(scores)
        improved = distributed.broadcast_from_main(
            miou is not None and (self.best is None or miou > self.best))
        if self.ctx.is_main:
            row, lines = self.validator.report(step, epoch, scores)
            self._log(row)
            lines[-1] += " (best so far)" if improved else ""
            for line in lines:
                display.message(line)
        if improved:
            self.best = distributed.broadcast_from_main(miou)
            self._save(step, "best.pt")
        else:
            self.best = distributed.broadcast_from_main(self.best)

    # -- stopping, saving, logging -------------------------------------------------------------
    def _on_signal(self, signum, _frame) -> None:
        self.stop_signal = signum

    def _should_stop(self, step: int) -> bool:
        local = self.stop_signal is not None or step == self.stop_at_step
        return bool(distributed.all_reduce_sums({"stop": int(local)})["stop"] > 0)

    def _save(self, step: int, name: str) -> None:
        if self.ctx.is_main:
            save_training_checkpoint(
                self.out / "checkpoints" / name, strategy=self.parts.strategy,
                trainable=self.parts.trainable, optimizer=self.optimizer,
                scheduler=self.scheduler, scaler=self.scaler, step=step, best=self.best,
                base=self.parts.base, config=self.config.to_dict())
        distributed.barrier()

    def _finish(self, step: int, display: TrainDisplay) -> Path:
        from sansa_cli.artifacts.train_checkpoint import export_training_checkpoint

        self._check_replicas()
        path = self.out / "adapter.safetensors"
        if self.ctx.is_main:
            export_training_checkpoint(self.out, path)
            if (self.out / "checkpoints" / "best.pt").exists():
                export_training_checkpoint(self.out, self.out / "adapter_best.safetensors",
                                           best=True)
            display.message(f"trained {step} step{_s(step)}; adapter written to {path}")
        distributed.barrier()
        return path

    def _check_replicas(self) -> None:
        """Every process must hold the same adapter weights at the end; say so if not."""
        if not self.ctx.distributed:
            return
        total = sum(float(p.detach().double().sum()) for p in self.parts.trainable.values())
        sums = distributed.all_reduce_sums({"total": total, "square": total * total})
        mean = sums["total"] / self.ctx.world
        if abs(sums["square"] / self.ctx.world - mean * mean) > 1e-12 * max(1.0, mean * mean):
            raise SansaError("the processes ended with different adapter weights; report this "
                             "as a bug with the run's config.yaml")

    def _log(self, row: dict) -> None:
        with (self.out / "log.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")

    def _trim_log(self, step: int) -> None:
        """Drop log rows past the checkpoint being resumed (they will be logged again), and a
        last line torn by a crash mid-write, as the evaluation log does."""
        from sansa_cli.artifacts.files import write_bytes_atomic
        from sansa_cli.evaluation.resume import read_json_lines

        log = self.out / "log.jsonl"
        if log.exists():
            rows = read_json_lines(log, log.read_text(errors="replace").splitlines(), LOG_FIX)
            kept = [r for r in rows if isinstance(r, dict) and r.get("step", 0) <= step]
            write_bytes_atomic(log, "".join(json.dumps(r) + "\n" for r in kept).encode())


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _one_line_errors(batches):
    """``batches``, with a sansa error raised in a data-loading worker process told in its own
    one line (torch re-raises it with the worker's whole traceback as the message)."""
    try:
        yield from batches
    except SansaError as exc:
        lines = str(exc).strip().splitlines()
        if len(lines) < 2:
            raise
        last = lines[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        raise type(exc)(last[len(prefix):] if last.startswith(prefix) else last) from None
