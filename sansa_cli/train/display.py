"""Progress of a training run: a rich display on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time


class TrainDisplay:
    """Shows epoch, step, loss, learning rate, images per second and the remaining time."""

    def __init__(self, total_steps: int, first_step: int, enabled: bool = True):
        self.total, self.first = total_steps, first_step
        self.enabled = enabled
        self.start = time.perf_counter()
        self.progress = None
        if enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f} · lr {task.fields[lr]:.2e} · "
                           "{task.fields[ips]:.1f} img/s"), TimeRemainingColumn(),
                transient=False)
            self.task = self.progress.add_task("train", total=total_steps, completed=first_step,
                                               epoch=0, loss=0.0, lr=0.0, ips=0.0)
            self.progress.start()

    def update(self, step: int, epoch: int, loss: float, lr: float, images_per_s: float,
               log_line: bool) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.update(self.task, completed=step, epoch=epoch, loss=loss, lr=lr,
                                 ips=images_per_s)
        elif log_line:
            done = step - self.first
            eta = (time.perf_counter() - self.start) / max(done, 1) * (self.total - step)
            print(f"step {step}/{self.total} epoch {epoch} loss {loss:.4f} lr {lr:.2e} "
                  f"{images_per_s:.1f} img/s eta {eta:.0f}s", file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
