"""What a stored cell depends on: its fingerprint (:func:`cell_key`: a change to any of it recomputes
the cell on a rerun) and its scoring key (:func:`scoring_key`: a change rescores the stored
translations without training again).

Code enters both through code identities (:mod:`benchbias.foundation.code_identity`): what the code
computes, under logical names, so moving or reformatting a file changes no key.
"""

from __future__ import annotations

from typing import Any

import torch

from benchbias.data.sources import BenchmarkData
from benchbias.foundation.code_identity import module_sha256, modules_sha256
from benchbias.foundation.config import Benchmark, ModelConfig, stable_hash
from benchbias.foundation.contract import Translator
from benchbias.foundation.registry import Registered

CELL_FORMAT = 4  # bump when what a cell trains or translates changes, so stored cells are recomputed
SCORING_FORMAT = 2  # bump when what scoring a cell's translations records changes, so they are rescored
# The shared training core every baseline builds on, by logical name: a change to what it computes
# recomputes their cells. (What the runner itself computes per cell, the image scale included, is
# versioned by CELL_FORMAT.)
CORE_MODULES = {
    "contract": "benchbias.foundation.contract",
    "protocol": "benchbias.data.protocol",
    "translation": "benchbias.nets.translation",
    "networks": "benchbias.nets.networks",
    "losses": "benchbias.nets.losses",
    "image_pool": "benchbias.nets.image_pool",
    "grouping": "benchbias.nets.grouping",
}
# The metrics' code, whose change rescores stored translations.
SCORING_MODULE = "benchbias.scoring.metrics"


def core_code_sha256() -> str:
    return modules_sha256(CORE_MODULES)


def training_code() -> str:
    """The identity of the code that trains and translates every baseline (the training core and the
    cell format), recorded beside the machine: two runs can match bit for bit only when both are equal."""
    return stable_hash({"format": CELL_FORMAT, "core": core_code_sha256()})[:16]


def protocol_key(bench: Benchmark, data: BenchmarkData) -> str:
    """What every cell of a run depends on: its data and the protocol that samples from it."""
    resolved = bench.to_dict()  # options added later enter only when set
    return stable_hash(
        {
            "data": data.identity,  # these very prepared slices
            "dataset": resolved["dataset"],
            "slices": resolved["slices"],
            "split": resolved["split"],
            "domains": {k: v for k, v in resolved["domains"].items() if k != "target_fractions"},
        }
    )


def compute_settings(device: torch.device, threads: int, amp: bool, precision_override: tuple[str, ...] = ()) -> dict[str, Any]:
    """Device kind, CPU threads per cell and the precision on CUDA (autocast, TF32 as set in this
    process): each changes a trained network's numbers. ``precision_override``: the benchmark's
    pinned precision settings the run overrode (recorded only when there are some)."""
    cuda = device.type == "cuda"
    settings: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "threads": None if cuda else threads,
        "amp": bool(amp and cuda),
    }
    if cuda:  # added later: CPU runs keep their cell keys
        settings["tf32"] = bool(torch.backends.cudnn.allow_tf32)
    if precision_override:
        settings["precision_override"] = list(precision_override)
    return settings


def programs(bench: Benchmark, translator: Translator) -> list[tuple[float, ...]]:
    """The target fractions whose models train as one program: consecutive chunks of
    ``training.models_per_program`` when the translator trains models together, else one each."""
    size = bench.models_per_program if getattr(translator, "trains_together", False) else 1
    fractions = bench.domains.target_fractions
    return [tuple(fractions[i : i + size]) for i in range(0, len(fractions), size)]


def program_of(bench: Benchmark, translator: Translator, ratio: float) -> tuple[float, ...]:
    return next(chunk for chunk in programs(bench, translator) if ratio in chunk)


def cell_key(
    bench: Benchmark, method: ModelConfig, translator: Translator, entry: Registered, protocol: str, compute: dict[str, Any], seed: int, ratio: float
) -> str:
    """What a cell's translations depend on: a change to any of it recomputes the cell on a rerun."""
    together = program_of(bench, translator, ratio)
    return stable_hash(
        {
            "format": CELL_FORMAT,
            "protocol": protocol,
            "plugin": method.plugin,
            "code": entry.code_sha256,
            "core": core_code_sha256(),
            "params": translator.hparams,
            "steps": method.steps,
            "seed": seed,
            "ratio": ratio,
            "compute": compute,
            # Models trained together end in other float roundings than alone (or in another group).
            **({"trained_with": list(together)} if len(together) > 1 else {}),
        }
    )


def scoring_key(judge_sha256: dict[str, str], metric_code: dict[str, str], network_max: float) -> str:
    """What a cell's scores depend on beyond its translations: the judges and the metrics' code. A
    change to it rescores stored translations on a rerun, without training again."""
    return stable_hash(
        {"format": SCORING_FORMAT, "judges": judge_sha256, "scores": module_sha256(SCORING_MODULE), "plugins": metric_code, "network_max": network_max}
    )
