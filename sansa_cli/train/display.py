"""Progress of a training run: a rich display on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import threading
import time


class TrainDisplay:
    """Shows epoch, step, loss, learning rate, images per second and the remaining time.

    On a terminal: a live progress bar. Otherwise (a pipe, a log file): a line after the first
    step, at each ``--log-every`` step, and whenever ``progress_seconds`` passed without one
    (also within a long step or validation: a background thread then says so).
    """

    def __init__(self, total_steps: int, first_step: int, enabled: bool = True,
                 progress_seconds: float = 30.0):
        self.total, self.first = total_steps, first_step
        self.enabled = enabled
        self.start = time.perf_counter()
        self.every = progress_seconds
        self.last_step_line: float | None = None  # when the plain display last showed a step
        self.last_line = self.start  # ... or any line
        self.step = first_step
        self.progress = None
        self.heartbeat: threading.Thread | None = None
        self.stopped = threading.Event()
        self.lock = threading.Lock()
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
        elif enabled and progress_seconds > 0:
            self.heartbeat = threading.Thread(target=self._beat, name="sansa-train-progress",
                                              daemon=True)
            self.heartbeat.start()

    def update(self, step: int, epoch: int, loss: float, lr: float, images_per_s: float,
               log_line: bool) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.update(self.task, completed=step, epoch=epoch, loss=loss, lr=lr,
                                 ips=images_per_s)
            return
        with self.lock:
            self.step = step
            if log_line or self._due(step):
                self.last_step_line = self.last_line = time.perf_counter()
                done = step - self.first
                eta = (time.perf_counter() - self.start) / max(done, 1) * (self.total - step)
                print(f"step {step}/{self.total} epoch {epoch} loss {loss:.4f} lr {lr:.2e} "
                      f"{images_per_s:.1f} img/s eta {eta:.0f}s", file=sys.stderr, flush=True)

    def _due(self, step: int) -> bool:
        """The first step's line, or a line after ``progress_seconds`` of silence."""
        return (step == self.first + 1 or self.last_step_line is None
                or time.perf_counter() - self.last_step_line >= self.every)

    def _beat(self) -> None:
        """A line when a step (the first, a slow one) or a validation outlasts
        ``progress_seconds``."""
        while not self.stopped.wait(self.every / 4):
            with self.lock:
                silent = time.perf_counter() - self.last_line
                if silent >= self.every:
                    self.last_line = time.perf_counter()
                    print(f"step {self.step}/{self.total}: still working ({silent:.0f}s "
                          "since the last line)", file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.console.print(text)
            return
        with self.lock:
            self.last_line = time.perf_counter()
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        self.stopped.set()
        if self.heartbeat is not None:
            self.heartbeat.join()
        if self.progress is not None:
            self.progress.stop()
