"""Progress that suits where it goes.

On a terminal each cell's training steps show as a tqdm bar. When stderr is a file or a pipe (a CI
log, ``nohup``), a bar would write every step with carriage returns into one enormous line, so a
plain line is written every few seconds instead (cell, step, steps/s, ETA). In both cases a line
after every cell gives the overall count of cells done and the run's ETA.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

from tqdm.auto import tqdm

LINE_INTERVAL_S = 10.0  # seconds between step lines when stderr is not a terminal


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Steps:
    """Progress of one training loop: ``update(losses)`` once per step; a context manager."""

    def __init__(self, label: str, total: int, enabled: bool, stream: IO[str] | None = None, interval: float = LINE_INTERVAL_S) -> None:
        self.label, self.total, self.enabled, self.interval = label, total, enabled, interval
        self.stream = stream or sys.stderr
        self.terminal = enabled and self.stream.isatty()
        self.bar = tqdm(total=total, desc=label, unit="step", leave=True, dynamic_ncols=True, file=self.stream) if self.terminal else None
        self.done = 0
        self.started = self.last_line = time.monotonic()

    def update(self, losses: dict[str, float] | None = None) -> None:
        self.advance_to(self.done + 1, losses)

    def advance_to(self, done: int, losses: dict[str, float] | None = None) -> None:
        """Steps done so far (a worker process reports every second or so, not every step)."""
        step, self.done = done - self.done, done
        if self.bar is not None:
            self.bar.update(step)
            if losses:
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            return
        now = time.monotonic()
        if self.enabled and now - self.last_line >= self.interval and self.done < self.total:
            self.last_line = now
            rate = self.done / max(now - self.started, 1e-9)
            print(
                f"{self.label}: step {self.done}/{self.total}, {rate:.1f} steps/s, ETA {duration((self.total - self.done) / rate)}",
                file=self.stream,
                flush=True,
            )

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


class Cells:
    """The overall count: ``finished(label, group)`` after each cell prints cells done and the run's
    ETA. Cells of one group (a method) cost about the same, so the ETA charges each remaining cell the
    mean time of its group's cells computed in this invocation (else the mean of all computed cells);
    reused cells cost nothing. A cell's time is its own ``seconds`` when given, shared among ``workers``
    computing cells at once (workers take the longest cells first, so the gaps between finishing
    cells say little early on); else the time since the previous cell finished."""

    def __init__(self, groups: list[str], enabled: bool, stream: IO[str] | None = None, workers: int = 1) -> None:
        self.remaining = list(groups)  # the group of every cell not yet finished, in order
        self.total, self.enabled, self.workers = len(groups), enabled, workers
        self.stream = stream or sys.stderr
        self.done = self.reused = 0
        self.seconds: dict[str, list[float]] = {}
        self.started = self.last = time.monotonic()

    def finished(self, label: str, group: str, reused: bool = False, seconds: float | None = None) -> None:
        now = time.monotonic()
        self.done += 1
        self.remaining.remove(group)
        if reused:
            self.reused += 1
        else:
            self.seconds.setdefault(group, []).append(now - self.last if seconds is None else seconds / self.workers)
        self.last = now
        if not self.enabled or (reused and self.done < self.total):
            return
        reused_note = f", {self.reused} reused" if self.reused else ""
        line = f"cells {self.done}/{self.total} done{reused_note} ({label}); {duration(now - self.started)} elapsed, {self.eta()}"
        if self.stream.isatty():
            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def eta(self) -> str:
        if not self.remaining:
            return "done"
        every = [t for times in self.seconds.values() for t in times]
        if not every:
            return "ETA unknown"
        overall = sum(every) / len(every)
        mean = {group: sum(times) / len(times) for group, times in self.seconds.items()}
        return f"ETA {duration(sum(mean.get(group, overall) for group in self.remaining))}"


class Board:
    """The step progress of every cell now running, by label (several at once with worker processes):
    ``update(label, done, total, losses)`` from the runner or a listener thread, ``close(label)``."""

    def __init__(self, enabled: bool, stream: IO[str] | None = None, interval: float = LINE_INTERVAL_S) -> None:
        self.enabled, self.stream, self.interval = enabled, stream, interval
        self.cells: dict[str, Steps] = {}
        self.lock = threading.Lock()

    def update(self, label: str, done: int, total: int, losses: dict[str, float] | None = None) -> None:
        with self.lock:
            steps = self.cells.get(label)
            if steps is None:
                steps = self.cells[label] = Steps(label, total, self.enabled, self.stream, self.interval)
            steps.advance_to(done, losses)

    def close(self, label: str) -> None:
        with self.lock:
            steps = self.cells.pop(label, None)
            if steps is not None:
                steps.__exit__()

    def close_all(self) -> None:
        for label in list(self.cells):
            self.close(label)
