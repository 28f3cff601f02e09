"""The sandboxed child: ``python -m benchbias.run.sandboxed`` reads one request on stdin, trains the
translator's models, translates the holdout's source slices with each (and a second set, the private
holdout of ``leaderboard verify``, when sent) and writes the answer on stdout
(:mod:`benchbias.sandbox.wire`). Progress goes to stderr as lines the runner relays.

It trains exactly as a run does in its own process: the same seeding, contexts and programs
(:func:`benchbias.run.compute.compute_program`'s steps), so an isolated cell's translations are
those of an unisolated one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchbias.foundation.contract import PairedSlices, UnpairedDomains
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.registry import load_registry
from benchbias.run.compute import TRANSLATE_BATCH, plugin_failure
from benchbias.run.losses import RecordingContext
from benchbias.sandbox import wire
from benchbias.sandbox.isolated import PROGRESS


def main() -> None:
    request, arrays = wire.unpack(sys.stdin.buffer.read())
    try:
        reply, translations = describe(request) if "describe" in request else work(request, arrays)
    except CallFailed as exc:  # the plugin's own code raised: one line and its traceback
        failure = plugin_failure("sandbox", exc.call, exc.__cause__)
        reply, translations = {"error": {"problem": failure.problem, "details": failure.details}}, {}
    except Exception as exc:  # the plugin could not be loaded or built
        failure = plugin_failure("sandbox", "loading the translator", exc)
        reply, translations = {"error": {"problem": failure.problem, "details": failure.details}}, {}
    sys.stdout.buffer.write(wire.pack(reply, translations))
    sys.stdout.buffer.flush()


class CallFailed(Exception):
    def __init__(self, call: str) -> None:
        super().__init__(call)
        self.call = call


def describe(request: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Each requested translator as the runner needs to know it without importing its code: whether
    it is paired and trains models together, its parameters resolved, its code identity and origin;
    or the one-line error its parameters or name give."""
    registry = load_registry([Path(p) for p in request["plugin_dirs"]])
    descriptions = {}
    for method, asked in request["describe"].items():
        try:
            entry = registry.get("translator", asked["plugin"])
            translator = entry.cls(**asked["params"])
            descriptions[method] = {
                "name": entry.name,
                "paired": bool(translator.paired),
                "trains_together": bool(getattr(translator, "trains_together", False)),
                "description": str(getattr(entry.cls, "description", "")),
                "hparams": json.loads(json.dumps(dict(translator.hparams))),
                "code": entry.code_sha256,
                "origin": entry.origin.to_dict(),
            }
        except (BenchbiasError, ValueError, TypeError) as exc:
            descriptions[method] = {"error": str(exc)}
    return {"descriptions": descriptions}, {}


def work(request: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    torch.set_num_threads(int(request["threads"]))
    registry = load_registry([Path(p) for p in request["plugin_dirs"]])
    cls = registry.get("translator", request["plugin"]).cls
    translator = cls(**request["params"])
    steps, seed, models = int(request["steps"]), int(request["seed"]), int(request["models"])
    kind = PairedSlices if translator.paired else UnpairedDomains
    sets = [kind(torch.from_numpy(arrays[f"source_{i}"]), torch.from_numpy(arrays[f"target_{i}"])) for i in range(models)]
    last = [-1.0]

    def on_step(step: int, losses: dict[str, float] | None, first: bool) -> None:
        now = time.monotonic()
        if first and (losses is not None or now - last[0] > 1.0 or step + 1 == steps):
            last[0] = now
            print(PROGRESS + json.dumps({"done": step + 1, "losses": losses}), file=sys.stderr, flush=True)

    contexts = []
    for i in range(models):
        workdir = Path("/tmp") / f"cell-{i}"
        workdir.mkdir(parents=True, exist_ok=True)
        contexts.append(
            RecordingContext(
                seed=seed, device=torch.device("cpu"), steps=steps, workdir=workdir, on_step=lambda s, losses, first=i == 0: on_step(s, losses, first)
            )
        )
    torch.manual_seed(seed)  # as compute_program: every fraction's model starts alike within a seed
    start = time.perf_counter()
    try:
        if models == 1:
            translator.fit(sets[0], contexts[0])
            trained = [translator]
        else:
            trained = translator.fit_together(sets, contexts)
    except Exception as exc:
        raise CallFailed("fit()") from exc
    train_seconds = (time.perf_counter() - start) / models
    source = torch.from_numpy(arrays["holdout_source"])
    extra = torch.from_numpy(arrays["extra_source"]) if "extra_source" in arrays else None
    translations, seconds = {}, []
    for i, model in enumerate(trained):
        start = time.perf_counter()
        translations[f"translated_{i}"] = translated(model, source)
        seconds.append(time.perf_counter() - start)
        if extra is not None:
            translations[f"extra_{i}"] = translated(model, extra)
    return {"train_seconds": train_seconds, "translate_seconds": seconds, "curves": [c.curve() for c in contexts]}, translations


def translated(model, source: torch.Tensor) -> np.ndarray:
    try:
        outs = [model.translate(batch) for batch in source.split(TRANSLATE_BATCH)]
    except Exception as exc:
        raise CallFailed("translate()") from exc
    if not all(isinstance(o, torch.Tensor) for o in outs):
        raise CallFailed("translate()") from TypeError("translate() must return a torch.Tensor")
    return torch.cat([o.detach().to("cpu", torch.float32) for o in outs]).numpy()


if __name__ == "__main__":
    main()
