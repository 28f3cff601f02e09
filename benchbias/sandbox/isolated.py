"""The runner's side of a sandboxed program: send the training arrays and the holdout's source slices
to a child in the sandbox, relay its progress, and take back one translation per model.

The child is ``python -m benchbias.run.sandboxed`` (:mod:`benchbias.run.sandboxed`). What it returns
is checked here as untrusted input: the right number of float32 arrays of the holdout's shape, a
number of seconds, loss curves of plain numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchbias.foundation.errors import BenchbiasError
from benchbias.sandbox import wire
from benchbias.sandbox.bubblewrap import sandboxed_command

PROGRESS = "\x1ebenchbias-progress "  # a child's progress line on stderr: this prefix, then JSON
STDERR_KEPT = 40  # lines of the child's other output kept for an error message


@dataclass(frozen=True)
class IsolatedProgram:
    """What the child trains: ``plugin`` (a translator's registered name) with ``params``, one model
    per ``(sources[i], targets[i])``, for ``steps`` steps under ``seed``; then it translates
    ``holdout_source`` with each model, and ``extra_source`` too when given (the private holdout of
    ``benchbias leaderboard verify``)."""

    plugin: str
    params: dict[str, Any]
    plugin_dirs: tuple[Path, ...]
    sources: Sequence[np.ndarray]
    targets: Sequence[np.ndarray]
    holdout_source: np.ndarray
    steps: int
    seed: int
    threads: int
    where: str  # the program, as error messages name it
    extra_source: np.ndarray | None = None


@dataclass(frozen=True)
class IsolatedResult:
    translations: list[torch.Tensor]  # (N, 1, H, W) float32, one per model, as translate() returned them
    curves: list[dict[str, Any] | None]
    train_seconds: float  # each model's share of the training
    translate_seconds: list[float]
    extra_translations: list[torch.Tensor] = field(default_factory=list)  # of extra_source, one per model


class SandboxFailure(BenchbiasError):
    """The child failed (a plugin raised, or it died); ``details`` holds what it printed."""

    def __init__(self, where: str, problem: str, details: str) -> None:
        super().__init__(where, problem, details)
        self.where, self.problem, self.details = where, problem, details

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


Progress = Callable[[int, "dict[str, float] | None"], None]  # (steps done, losses or None)


def train_and_translate(job: IsolatedProgram, report: Progress | None = None, hidden: Sequence[Path] = ()) -> IsolatedResult:
    """Run ``job`` in the sandbox; ``report(steps done, losses)`` sees its progress. ``hidden``:
    folders to keep from the child even where they lie inside what it may read."""
    header = {
        "plugin": job.plugin,
        "params": job.params,
        "plugin_dirs": [str(p) for p in job.plugin_dirs],
        "steps": job.steps,
        "seed": job.seed,
        "threads": job.threads,
        "models": len(job.sources),
    }
    arrays = {"holdout_source": np.ascontiguousarray(job.holdout_source, np.float32)}
    if job.extra_source is not None:
        arrays["extra_source"] = np.ascontiguousarray(job.extra_source, np.float32)
    for i, (source, target) in enumerate(zip(job.sources, job.targets)):
        arrays[f"source_{i}"], arrays[f"target_{i}"] = np.ascontiguousarray(source, np.float32), np.ascontiguousarray(target, np.float32)
    reply, returned = exchange(header, arrays, job.plugin_dirs, job.where, report, hidden)
    return _checked(reply, returned, job)


def describe(requests: dict[str, dict[str, Any]], plugin_dirs: Sequence[Path], hidden: Sequence[Path] = ()) -> dict[str, Any]:
    """What the sandbox finds, importing the plugins there, of each translator in ``requests``
    (``{method: {"plugin": name, "params": {...}}}``): ``{method: description}`` (see
    :mod:`benchbias.run.sandboxed`), or ``{method: {"error": "..."}}``. Plain JSON, checked by the caller."""
    reply, _ = exchange({"describe": requests, "plugin_dirs": [str(p) for p in plugin_dirs]}, {}, plugin_dirs, "describing the translators", None, hidden)
    descriptions = reply.get("descriptions")
    if not isinstance(descriptions, dict) or set(descriptions) != set(requests):
        raise SandboxFailure("describing the translators", "the sandbox's answer is malformed: descriptions", "")
    return descriptions


def exchange(
    header: dict[str, Any], arrays: dict[str, np.ndarray], readable: Sequence[Path], where: str, report: Progress | None, hidden: Sequence[Path]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One request to a child in the sandbox and its answer; progress lines go to ``report``."""
    command = sandboxed_command([sys.executable, "-m", "benchbias.run.sandboxed"], readable=readable, hidden=hidden)
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    answer: list[bytes] = []

    def talk() -> None:  # the request in, the answer out, beside the progress lines read below
        try:
            child.stdin.write(wire.pack(header, arrays))
            child.stdin.close()
        except BrokenPipeError:
            pass
        answer.append(child.stdout.read())

    talker = threading.Thread(target=talk, daemon=True)
    talker.start()
    other: list[str] = []
    for raw in child.stderr:
        line = raw.decode(errors="replace").rstrip("\n")
        if line.startswith(PROGRESS):
            done, losses = _progress(line[len(PROGRESS) :])
            if report is not None and done is not None:
                report(done, losses)
        else:
            other = (other + [line])[-STDERR_KEPT:]
    talker.join()
    code = child.wait()
    output = "\n".join(other)
    try:
        reply, returned = wire.unpack(answer[0] if answer else b"")
    except wire.WireError as exc:
        raise SandboxFailure(where, f"the sandboxed translator exited with code {code} without an answer ({exc})", output) from None
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        raise SandboxFailure(where, str(error.get("problem", "failed"))[:500], str(error.get("details", output)))
    return reply, returned


def _progress(text: str) -> tuple[int | None, dict[str, float] | None]:
    try:
        value = json.loads(text)
        done = value["done"]
        losses = value.get("losses")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None, None
    if not isinstance(done, int):
        return None, None
    if not isinstance(losses, dict) or not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in losses.items()):
        losses = None
    return done, losses


def _checked(reply: dict[str, Any], returned: dict[str, np.ndarray], job: IsolatedProgram) -> IsolatedResult:
    def bad(problem: str) -> SandboxFailure:
        return SandboxFailure(job.where, f"the sandboxed translator's answer is malformed: {problem}", "")

    models = len(job.sources)

    def translations_of(prefix: str, source: np.ndarray) -> list[torch.Tensor]:
        outs = []
        for i in range(models):
            out = returned.get(f"{prefix}_{i}")
            if out is None:
                raise bad(f"no {prefix} translations for model {i}")
            if out.dtype != np.float32 or out.shape != source.shape:
                raise bad(f"model {i}'s {prefix} translations are {out.dtype} {out.shape}, expected float32 {source.shape}")
            outs.append(torch.from_numpy(out.copy()))
        return outs

    translations = translations_of("translated", job.holdout_source)
    extra = [] if job.extra_source is None else translations_of("extra", job.extra_source)

    def seconds(value: Any) -> bool:
        return isinstance(value, (int, float)) and math.isfinite(value) and value >= 0

    if not seconds(reply.get("train_seconds")):
        raise bad("train_seconds")
    translate_seconds = reply.get("translate_seconds")
    if not isinstance(translate_seconds, list) or len(translate_seconds) != models or not all(seconds(t) for t in translate_seconds):
        raise bad("translate_seconds")
    curves = reply.get("curves")
    if not isinstance(curves, list) or len(curves) != models:
        raise bad("curves")
    return IsolatedResult(translations, [_curve(c) for c in curves], float(reply["train_seconds"]), [float(t) for t in translate_seconds], extra)


def _curve(curve: Any) -> dict[str, Any] | None:
    """A loss curve as the runner records it, or None when it is not made of plain numbers."""
    if not isinstance(curve, dict):
        return None
    steps, terms = curve.get("steps"), curve.get("terms")
    if not isinstance(steps, list) or not all(isinstance(s, int) for s in steps) or not isinstance(terms, dict):
        return None
    for name, values in terms.items():
        if not isinstance(name, str) or not isinstance(values, list) or len(values) != len(steps):
            return None
        if not all(v is None or isinstance(v, (int, float)) for v in values):
            return None
    return {"steps": steps, "terms": terms}
