"""``benchbias leaderboard verify``: re-run a random sample of a leaderboard entry's cells from the
plugin it names, in the OS sandbox, and compare with what the entry claims.

Each sampled cell (target fraction, seed) is trained again in the sandbox (:mod:`benchbias.sandbox`)
on the public training domains, exactly as the submitter's run did: with the other fractions whose
models trained with it as one program, so that every model is the entry's (bit for bit on the same
machine kind and thread count, where the public scores must then be equal) and every cell of the
program is compared. Each model translates two holdouts: the public one, whose scores must **reproduce** the entry's, and the maintainers' private
one (:mod:`benchbias.verification.private`), scored with judges trained on the private data, whose
scores must **agree** with the entry's. A forged or patched score fails the first comparison; a
translator that recognises the public holdout (a lookup of its real targets, shipped with the
plugin or regenerated from the public recipe) fails the second, because nobody outside holds the
private one.

The scores compared are hallucination, erasure and MAE, the verdict's inputs that a cell owns. The
tolerance of each is ``z(1 - 0.025 / m) * sqrt(2) * SD`` (:func:`benchbias.leaderboard.seed_spread.factor`,
m the number of comparisons; 0 for the public scores of an entry made on this machine kind) with SD
the entry's seed-to-seed spread of that score at one fraction,
pooled over its fractions: a rerun of the same cell at another seed fails about 2.5% of the time. The
private holdout differs from the public one in its subjects and its judges, so its SD adds the
holdout's sampling error: the binomial SD of the cell's rate on its slices, and for MAE
:data:`MAE_HOLDOUT_SHARE` of the value. An entry of one seed has no seed spread; its rates then get
the binomial SD alone and its MAE :data:`MAE_HOLDOUT_SHARE` of the value.
"""

from __future__ import annotations

import hmac
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchbias import __version__
from benchbias.data.protocol import paired_domains, unpaired_domains
from benchbias.data.sources import cache_dir
from benchbias.foundation.config import Benchmark, ConfigError, ModelConfig
from benchbias.foundation.registry import PluginError, Registry, foreign_plugin_dirs
from benchbias.leaderboard.seed_spread import COUNTS, factor, pooled_sd, same_machine
from benchbias.nets.scale import to_network, unit_images
from benchbias.records.provenance import git_commit, machine
from benchbias.records.signatures import canonical
from benchbias.run.cells import CellJob
from benchbias.run.compute import PluginFailure, check_translations, score, stored_form
from benchbias.run.inputs import RunInputs, plugins_of, read_data, resolve_judges
from benchbias.run.isolation import isolated_registry
from benchbias.run.keys import program_of, training_code
from benchbias.run.options import select_device
from benchbias.run.rescoring import TOLERANCE as EXACT  # the same translations scored twice
from benchbias.verification.private import PRIVATE_HARDENING, derived, hardened_first_judge, private_benchmark, season

COMPARED = ("hallucination", "erasure", "mae")
MAE_HOLDOUT_SHARE = 0.05  # how much a cell's MAE may differ between two holdouts of the same size, beside its seed spread
DEFAULT_CELLS = 2


class VerificationError(ConfigError):
    """The entry cannot be verified here (its plugin is not the code it names, its protocol is not the benchmark's)."""


@dataclass
class CellCheck:
    ratio: float
    seed: int
    claimed: dict[str, float | None]
    public: dict[str, float | None]
    private: dict[str, float | None]
    problems: list[str] = field(default_factory=list)


@dataclass
class Verification:
    method: str
    version: str
    season: str
    cells: list[CellCheck]
    tolerances: dict[str, dict[str, float]]  # "public" / "private" -> score -> the largest difference allowed
    private_judges: dict[str, dict[str, Any]]
    seconds: float
    exact: bool = False  # the entry was made on this machine kind and thread count: its public scores must be reproduced exactly

    @property
    def problems(self) -> list[str]:
        return [f"r={c.ratio:g} seed={c.seed}: {p}" for c in self.cells for p in c.problems]

    @property
    def passed(self) -> bool:
        return bool(self.cells) and not self.problems

    def record(self) -> dict[str, Any]:
        """What a signature vouches for (the ``verification`` field of the entry, before signing)."""
        return {
            "season": self.season,
            "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "benchbias_version": __version__,
            "git_commit": git_commit(),
            "machine": machine(1),
            "sampled_cells": [{"ratio": c.ratio, "seed": c.seed, "claimed": c.claimed, "public": c.public, "private": c.private} for c in self.cells],
            "tolerances": self.tolerances,
            "public_exact": self.exact,
            "private_judges": self.private_judges,
            "seconds": round(self.seconds, 1),
        }


def sample_cells(entry: dict[str, Any], secret: str, count: int | None) -> list[tuple[float, int]]:
    """``count`` of the entry's (fraction, seed) cells (all when None), drawn with a generator seeded
    by the secret and the entry, so a submitter cannot tell in advance which will be re-run."""
    cells = sorted({(c["ratio"], c["seed"]) for c in entry["cells"]})
    if count is None or count >= len(cells):
        return cells
    seed = int.from_bytes(hmac.digest(derived(secret, "sample"), canonical(entry["cells"]), "sha256")[:8], "big")
    return sorted(random.Random(seed).sample(cells, count))


def tolerances(entry: dict[str, Any], comparisons: int) -> dict[str, dict[str, float]]:
    """The largest difference allowed for each compared score, on the public and the private holdout
    (see the module's docstring)."""
    z = factor(comparisons)
    cells = entry["cells"]
    out: dict[str, dict[str, float]] = {"public": {}, "private": {}}
    for name in COMPARED:
        values = [c["scores"].get(name) for c in cells if c["scores"].get(name) is not None]
        seeds = pooled_sd([[c["scores"].get(name) for c in cells if c["ratio"] == r] for r in sorted({c["ratio"] for c in cells})])
        if name in COUNTS:
            n = float(np.mean([c["scores"].get(COUNTS[name]) or 1 for c in cells]))
            p = min(max(float(np.mean(values)) if values else 0.5, 1.0 / n), 1.0 - 1.0 / n)
            holdout = math.sqrt(p * (1.0 - p) / n)
        else:
            holdout = MAE_HOLDOUT_SHARE * (float(np.mean(values)) if values else 0.0)
        public = seeds if seeds is not None else holdout
        out["public"][name] = z * public
        out["private"][name] = z * math.sqrt(public**2 + holdout**2)
    return out


def entry_of(board: dict[str, Any], method: str, version: str | None) -> dict[str, Any]:
    found = [e for e in board["entries"] if e["method"] == method and (version is None or e["version"] == version)]
    if not found:
        raise VerificationError(f"leaderboard {board['benchmark']}: no entry {method!r}" + (f" version {version!r}" if version else ""))
    if len(found) > 1:
        raise VerificationError(f"leaderboard {board['benchmark']}: {method!r} has {len(found)} versions; name one with --version")
    return found[0]


def entry_benchmark(bench: Benchmark, board: dict[str, Any], entry: dict[str, Any]) -> Benchmark:
    """``bench`` with the entry's method as it ran (plugin, parameters, steps) and its seeds."""
    if bench.protocol_hash() != board["protocol_hash"]:
        raise VerificationError(f"{bench.source_file}: its protocol hash is not the leaderboard's ({board['protocol_hash'][:12]}); the benchmark file changed")
    method = ModelConfig(entry["method"], entry["plugin"], dict(entry["params"]), entry["steps"])
    return replace(bench, methods=(method,), optional_methods=(), seeds=tuple(entry["seeds"]))


def pinned_plugin(registry: Registry, entry: dict[str, Any]) -> None:
    """The installed plugin must be the code the entry was made with: its distribution and version,
    for a plugin file its sha256, and the code identity of its classes where the entry records it."""
    try:
        registered = registry.get("translator", entry["plugin"])
    except PluginError as exc:
        raise VerificationError(str(exc)) from None
    found = {**registered.origin.to_dict(), "code_sha256": registered.code_sha256}
    claimed = entry["origin"]
    for key in ("distribution", "version", "sha256", "code_sha256")[: 4 if "code_sha256" in claimed else 3]:
        if claimed.get(key) != found.get(key):
            raise VerificationError(
                f"entry {entry['method']!r}: made with plugin {entry['plugin']!r} {key} {claimed.get(key)!r}, the installed one has {found.get(key)!r}"
            )


def verify_entry(
    board: dict[str, Any],
    method: str,
    bench: Benchmark,
    secret: str,
    version: str | None = None,
    cells: int | None = DEFAULT_CELLS,
    plugin_dirs: Sequence[Path] = (),
    data_path: str | None = None,
    private_data: str | None = None,
    show_progress: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> Verification:
    """Re-run ``cells`` sampled cells (all when None) of the entry ``method`` of ``board`` and compare."""
    from benchbias.sandbox import bubblewrap_binary, train_and_translate
    from benchbias.sandbox.isolated import SandboxFailure

    start = time.perf_counter()
    bubblewrap_binary()  # raises IsolationUnavailable with the reason
    entry = entry_of(board, method, version)
    bench = entry_benchmark(bench, board, entry)
    registry = isolated_registry(bench, (method,), plugin_dirs)
    pinned_plugin(registry, entry)
    device = select_device("cpu")
    work = cache_dir() / "private" / season(secret) / "work"

    def inputs_of(b: Benchmark, path: str | None, what: str) -> RunInputs:
        say(f"{what}: reading the data and the judges")
        plugins = plugins_of(b, registry)  # judges of their own: each holdout's are loaded into them
        data = read_data(b, plugins, registry, path, show_progress)
        judges, _ = resolve_judges(b, plugins, data, work / "judge", device, False, show_progress)
        return RunInputs.with_judges(b, plugins, data, device, False, {role: Path(r["file"]).read_bytes() for role, r in judges.items()}), judges

    public, _ = inputs_of(bench, data_path, "public holdout")
    private_bench = hardened_first_judge(private_benchmark(bench, secret, private_data), registry)
    private, private_judges = inputs_of(private_bench, private_data, "private holdout")
    if public.data.holdout_source.shape[1:] != private.data.holdout_source.shape[1:]:
        raise VerificationError("the private holdout's slices are not the shape of the public ones")
    config, (template, _) = bench.methods[0], public.plugins.translators[method]
    programs = dict.fromkeys((seed, program_of(bench, template, ratio)) for ratio, seed in sample_cells(entry, secret, cells))
    claimed = {(c["ratio"], c["seed"]): c["scores"] for c in entry["cells"]}
    compared = sum(1 for seed, ratios in programs for r in ratios if (r, seed) in claimed)
    limits = tolerances(entry, 2 * compared * len(COMPARED))
    exact = same_machine(entry.get("machine"), {**machine(1), "training_code": training_code()})
    if exact:  # the same models, bit for bit: the public scores must be the entry's
        limits["public"] = dict.fromkeys(COMPARED, EXACT)
    hidden = tuple(Path(p) for p in (cache_dir(), data_path, private_data, bench.dataset.path) if p)
    checks = []
    for seed, ratios in programs:
        where = (
            f"methods.{method} (plugin {config.plugin}) at target fraction{'s' if len(ratios) > 1 else ''} {', '.join(f'{r:g}' for r in ratios)}, seed {seed}"
        )
        say(f"{where}: training in the sandbox ({config.steps} steps)")
        try:
            result = train_and_translate(program_job(public, private, bench, config, template, ratios, seed, plugin_dirs, where), hidden=hidden)
        except SandboxFailure as exc:
            raise PluginFailure(exc.where, exc.problem, exc.details) from None
        for i, ratio in enumerate(ratios):
            if (ratio, seed) not in claimed:
                continue
            check = CellCheck(ratio, seed, {k: claimed[ratio, seed].get(k) for k in COMPARED}, {}, {})
            for side, inputs, raw in (("public", public, result.translations[i]), ("private", private, result.extra_translations[i])):
                check_translations(raw, inputs.data.holdout_source, where)
                scores = scored(inputs, CellJob(method, seed, ratio, "", where), raw)
                getattr(check, side).update({k: scores.get(k) for k in COMPARED})
                for name in COMPARED:
                    a, b, allowed = check.claimed[name], scores.get(name), limits[side][name]
                    if a is None or b is None or not abs(a - b) <= allowed:
                        check.problems.append(f"{name} {fmt(a)} claimed, {fmt(b)} on the {side} holdout (allowed difference {allowed:.4f})")
            checks.append(check)
    judges = {role: {"sha256": r["sha256"], **{k: r[k] for k in ("holdout_accuracy", "holdout_dice") if k in r}} for role, r in private_judges.items()}
    hardening = {k: private_bench.classifier.params[k] for k in PRIVATE_HARDENING if k in private_bench.classifier.params}
    if hardening:
        judges["classifier"]["adversarial_training"] = hardening
    return Verification(entry["method"], entry["version"], season(secret), checks, limits, judges, time.perf_counter() - start, exact)


def program_job(
    public: RunInputs,
    private: RunInputs,
    bench: Benchmark,
    config: ModelConfig,
    template: Any,
    ratios: tuple[float, ...],
    seed: int,
    plugin_dirs: Sequence[Path],
    where: str,
) -> Any:
    """The sandboxed program that trains the models of ``ratios`` (the fractions that trained together
    in the entry's run) and translates both holdouts with each."""
    from benchbias.sandbox import IsolatedProgram

    m, sources, targets = public.network_max, [], []
    for ratio in ratios:
        d = (paired_domains if template.paired else unpaired_domains)(public.data.split.train, public.data.slices.is_tumor, bench.domains, ratio, seed)
        sources.append(to_network(unit_images(public.data.slices.source[d.source]), m).numpy())
        targets.append(to_network(unit_images(public.data.slices.target[d.target]), m).numpy())
    return IsolatedProgram(
        plugin=config.plugin,
        params=dict(template.hparams),
        plugin_dirs=foreign_plugin_dirs(plugin_dirs),
        sources=sources,
        targets=targets,
        holdout_source=public.data.holdout_source.numpy(),
        extra_source=private.data.holdout_source.numpy(),
        steps=config.steps,
        seed=seed,
        threads=1,  # as a run's worker processes train
        where=where,
    )


def scored(inputs: RunInputs, job: CellJob, raw: torch.Tensor) -> dict[str, Any]:
    """A translation's scores, stored and scored as a run's cells are (float16 on [0, 1])."""
    translated, out_of_range = stored_form(raw, inputs.network_max)
    return score(inputs, job, translated.float(), out_of_range)[0]["scores"]


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
