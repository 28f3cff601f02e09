"""``benchbias compare`` (what moved between two files) and ``benchbias check`` (did anything get worse).

Both read results files and leaderboards alike, validated on load. A leaderboard holding several
versions of a method stands for it with the version the run used, else the latest submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.scoretable import Score, ScoreTable
from benchbias.leaderboard import seed_spread
from benchbias.records.validation import kind_of, load_leaderboard, load_results
from benchbias.report.tables import text_table
from benchbias.scoring.summary import fmt


class CheckError(BenchbiasError, ValueError):
    """The two files cannot be compared (other protocol, missing method, bad tolerance)."""


# Default tolerances live in the score table (``Score.tolerance``): two standard deviations of the
# difference between two single-seed runs (2 x sqrt(2) x the seed-to-seed SD, pooled over l1, pix2pix,
# condgan and cyclegan on the committed synthetic-quick board at batch 4; README, "Comparing runs and
# checking a method in CI").
# Other hardware or thread counts move one seed's scores; on one machine with fixed threads a rerun is
# identical.


def of_seeds(summary: dict[str, Any], name: str, seeds: set[int]) -> float | None:
    """The mean of a sweep score's per-seed values over ``seeds``."""
    values = [row.get(name) for row in summary["per_seed"] if row["seed"] in seeds]
    if not values or None in values:
        return None
    return sum(values) / len(values)


def upper_half(summary: dict[str, Any], score: Score) -> float | None:
    """How far the worse end of the score's 95% interval over seeds lies from its pooled value."""
    ci, pooled = summary["ci95"].get(score.name), summary.get(score.name)
    if ci is None or pooled is None:
        return None
    return ci[1] - pooled if score.better == "lower" else pooled - ci[0]


@dataclass(frozen=True)
class Tolerance:
    amount: float
    relative: bool = False  # a share of the reference value
    given: bool = False  # set with --tolerance: asked for, so not replaced by an exact comparison

    def allowed(self, reference: float) -> float:
        return self.amount * abs(reference) if self.relative else self.amount

    def __str__(self) -> str:
        return f"{self.amount:.0%}" if self.relative else f"{self.amount:g}"


def parse_tolerances(specs: list[str], table: ScoreTable) -> dict[str, Tolerance]:
    """The score table's default tolerances, overridden (or extended to another sweep score that has
    a better direction) by ``SCORE=VALUE`` (absolute) or ``SCORE=VALUE%`` (relative) items."""
    tolerances = {s.name: Tolerance(s.tolerance) for s in table.checked()}
    checkable = [s.name for s in table.sweep() if s.better != "neither"]
    checkable += [f"{rate}{seed_spread.AT_FRACTION}" for rate in seed_spread.FRACTION_RATES if rate in table]
    for spec in specs:
        name, _, value = spec.partition("=")
        if name not in checkable:
            raise CheckError(f"--tolerance {spec}: unknown score '{name}' (scores: {', '.join(checkable)})")
        relative = value.endswith("%")
        try:
            amount = float(value.rstrip("%")) / (100 if relative else 1)
        except ValueError:
            raise CheckError(f"--tolerance {spec}: '{value}' is not a number (use SCORE=0.05 or SCORE=10%)") from None
        if amount < 0:
            raise CheckError(f"--tolerance {spec}: must not be negative")
        tolerances[name] = Tolerance(amount, relative, given=True)
    return tolerances


@dataclass
class Scored:
    """A results file or a leaderboard, reduced to what comparisons need."""

    path: Path
    kind: str
    benchmark: str
    protocol_hash: str
    dataset_fingerprint: str
    judge_sha256: str
    methods: dict[str, list[dict[str, Any]]]  # name -> entries (several versions on a leaderboard)
    table: ScoreTable

    def method(self, name: str, version: str | None = None) -> dict[str, Any]:
        if name not in self.methods:
            hint = "; submit a run of it first (benchbias leaderboard submit)" if self.kind == "leaderboard" else ""
            raise CheckError(f"{self.path}: method '{name}' is not in this {self.kind} (has: {', '.join(sorted(self.methods))}){hint}")
        entries = self.methods[name]
        exact = [e for e in entries if e["version"] == version]
        return exact[0] if exact else max(entries, key=lambda e: e.get("submitted", ""))


def load_scored(path: Path) -> Scored:
    path = Path(path)
    if kind_of(path) == "results":
        data = load_results(path)
        machine = data["provenance"].get("machine")
        methods = {name: [{"method": name, **m, **({"machine": machine} if machine else {})}] for name, m in data["methods"].items()}
        bench = data["benchmark"]
        return Scored(
            path,
            "results",
            bench["name"],
            bench["protocol_hash"],
            data["dataset"]["fingerprint"],
            data["classifier"]["sha256"],
            methods,
            ScoreTable.from_json(data["score_table"]),
        )
    data = load_leaderboard(path)
    methods: dict[str, list[dict[str, Any]]] = {}
    for e in data["entries"]:
        methods.setdefault(e["method"], []).append(e)
    return Scored(
        path,
        "leaderboard",
        data["benchmark"],
        data["protocol_hash"],
        data["dataset_fingerprint"],
        data["judge_sha256"],
        methods,
        ScoreTable.from_json(data["score_table"]),
    )


def _delta(a: float | None, b: float | None, digits: int = 3) -> str:
    return "n/a" if a is None or b is None else f"{b - a:+.{digits}f}"


def same_protocol(a: Scored, b: Scored) -> list[str]:
    """What differs between the two files' protocols (empty when comparable)."""
    return [
        f"{key}: {getattr(a, key)[:12]} ({a.path.name}) vs {getattr(b, key)[:12]} ({b.path.name})"
        for key in ("protocol_hash", "dataset_fingerprint", "judge_sha256")
        if getattr(a, key) != getattr(b, key)
    ]


# ---- compare -------------------------------------------------------------------------------


def split_method(spec: str) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:METHOD`` (a method of that file). A path that exists as given is a file,
    even with a colon in its name."""
    if Path(spec).exists() or ":" not in spec:
        return Path(spec), None
    path, _, method = spec.rpartition(":")
    if not path or not method:
        raise CheckError(f"{spec}: expected FILE or FILE:METHOD")
    return Path(path), method


def method_pairs(a: Scored, b: Scored, method_a: str | None = None, method_b: str | None = None) -> list[tuple[str, str]]:
    """Which method of A goes beside which of B: the named ones (a name given on one side only is
    looked for on both), else every method both files hold under one name."""
    if method_a or method_b:
        first, second = method_a or method_b, method_b or method_a
        a.method(first)  # unknown names: one line naming the file and what it holds
        b.method(second)
        return [(first, second)]
    common = [(m, m) for m in a.methods if m in b.methods]
    if not common:
        raise CheckError(
            f"{a.path} and {b.path} hold no method of the same name (A: {', '.join(sorted(a.methods))}; B: {', '.join(sorted(b.methods))}); "
            f"pair two with FILE:METHOD, e.g. benchbias compare {a.path}:{sorted(a.methods)[0]} {b.path}:{sorted(b.methods)[0]}"
        )
    return common


def compare(a: Scored, b: Scored, method_a: str | None = None, method_b: str | None = None) -> str:
    """Per-fraction and summary differences (B - A) of every method in both files, or of method
    ``method_a`` of A beside ``method_b`` of B."""
    lines = [f"A: {a.path} ({a.kind}, {a.benchmark})", f"B: {b.path} ({b.kind}, {b.benchmark})"]
    lines += [f"warning: not comparable, {d}" for d in same_protocol(a, b)]
    pairs = method_pairs(a, b, method_a, method_b)
    if not (method_a or method_b):
        for only, side in ((set(a.methods) - set(b.methods), "A"), (set(b.methods) - set(a.methods), "B")):
            if only:
                lines.append(f"only in {side}: {', '.join(sorted(only))}")
    for name_a, name_b in pairs:
        ea, eb = a.method(name_a), b.method(name_b)
        name = name_a if name_a == name_b else f"A {name_a} vs B {name_b}"
        summary = [["summary", "A", "B", "B - A"]]
        for score in a.table.merged(b.table).sweep():
            if score.name not in ea["summary"] and score.name not in eb["summary"]:
                continue
            a_value, b_value = ea["summary"].get(score.name), eb["summary"].get(score.name)
            summary.append([score.label, fmt(a_value, score.digits), fmt(b_value, score.digits), _delta(a_value, b_value, score.digits)])
        rho_a, rho_b = ea["summary"]["overall"]["spearman_rho"], eb["summary"]["overall"]["spearman_rho"]
        summary.append(["Spearman rho (tumor-called vs fraction)", fmt(rho_a, 2), fmt(rho_b, 2), _delta(rho_a, rho_b, 2)])
        fractions = [["target fraction", "healthy in: A", "B", "B - A", "tumor in: A", "B", "B - A", "flip: B - A", "MAE: A", "B", "B - A"]]
        rows_b = {row["ratio"]: row["mean"] for row in eb["per_fraction"]}
        for row in ea["per_fraction"]:
            ma, mb = row["mean"], rows_b.get(row["ratio"])
            if mb is None:
                continue
            h, t = "tumor_called_healthy_inputs", "tumor_called_tumor_inputs"
            fractions.append(
                [
                    f"{row['ratio']:g}",
                    fmt(ma[h], 2),
                    fmt(mb[h], 2),
                    _delta(ma[h], mb[h], 2),
                    fmt(ma[t], 2),
                    fmt(mb[t], 2),
                    _delta(ma[t], mb[t], 2),
                    _delta(ma["flip_rate"], mb["flip_rate"], 2),
                    fmt(ma["mae"], 4),
                    fmt(mb["mae"], 4),
                    _delta(ma["mae"], mb["mae"], 4),
                ]
            )
        lines += ["", f"== {name}: A {ea['version']} ({ea['summary']['n_seeds']} seeds), B {eb['version']} ({eb['summary']['n_seeds']} seeds)"]
        lines += [text_table(summary), "", text_table(fractions)]
    return "\n".join(lines)


# ---- check ---------------------------------------------------------------------------------


@dataclass
class CheckResult:
    rows: list[list[str]]
    worse: list[str]

    @property
    def passed(self) -> bool:
        return not self.worse


def _seeds(entry: dict[str, Any]) -> set[int]:
    return {row["seed"] for row in entry["summary"]["per_seed"]}


ROUND_OFF = 1e-9  # means of equal values summed in another order differ by this much, not more


@dataclass
class _MethodCheck:
    """One method's rows of ``check``."""

    name: str
    mine: dict[str, Any]
    ref: dict[str, Any]
    matched: bool
    exact: bool
    rows: list[list[str]]
    worse: list[str]

    def add(self, score: Score, title: str, before: float | None, after: float | None, allowed: float | None, allowed_text: str) -> None:
        digits = score.digits
        if before is None or after is None:
            verdict = "ok" if before is None and after is None else ("WORSE" if after is None else "better")
        elif allowed is None:
            verdict = "n/a"  # no seed spread to derive a tolerance from
        else:
            change = score.worse_by(before, after)
            verdict = "WORSE" if change > allowed + ROUND_OFF else ("better" if -change > allowed + ROUND_OFF else "ok")
        if verdict == "WORSE":
            self.worse.append(f"{self.name} {title}")
        shown = score.label if title == score.name else title
        self.rows.append(["", shown, fmt(before, digits), fmt(after, digits), _delta(before, after, digits), allowed_text, verdict])

    def values(self, score: str) -> tuple[float | None, float | None]:
        if self.matched:
            seeds = _seeds(self.mine)
            return of_seeds(self.ref["summary"], score, seeds), of_seeds(self.mine["summary"], score, seeds)
        return self.ref["summary"].get(score), self.mine["summary"].get(score)

    def spread(self, allowed: float | None, digits: int) -> tuple[float | None, str]:
        """A seed-spread tolerance as applied: 0 where the comparison is exact."""
        if self.exact:
            return 0.0, "0 (exact)"
        return allowed, "n/a" if allowed is None else f"{allowed:.{digits}f} (seeds)"


def check(run: Scored, reference: Scored, tolerances: dict[str, Tolerance], methods: list[str] | None = None) -> CheckResult:
    """Compare each method of ``run`` with its entry in ``reference``.

    When the run's seeds are a subset of the reference's, like is compared with like: both sides are
    the mean of those seeds' values (on the reference's machine and thread count that is an exact
    reproduction, and there every tolerance is 0). A score is worse when it rose by more than its
    tolerance and, when the reference ran several seeds, by more than the upper half of its 95% interval
    over seeds; or when it became undefined. Scores where higher is better are worse when they fell by
    that much. Beyond the score table's checked scores, every other sweep score with a better direction
    and each fraction's hallucination and erasure are checked with tolerances from the reference's
    seed spread (:mod:`benchbias.leaderboard.seed_spread`)."""
    problems = same_protocol(reference, run)
    if problems:
        raise CheckError(f"{run.path}: cannot be checked against {reference.path}: " + "; ".join(problems))
    rows = [["method", "score", "reference", "this run", "change", "tolerance", "verdict"]]
    worse: list[str] = []
    everyone = [e for entries in reference.methods.values() for e in entries]
    for name in methods or sorted(run.methods):
        mine = run.method(name)
        ref = reference.method(name, mine["version"])
        inside = _seeds(mine) <= _seeds(ref)
        asked = any(t.given for t in tolerances.values())  # --tolerance asks for tolerances, not exactness
        exact = inside and not asked and seed_spread.same_machine(seed_spread.machine_of(mine), seed_spread.machine_of(ref))
        one = _MethodCheck(name, mine, ref, inside and _seeds(mine) != _seeds(ref), exact, rows, worse)
        seeds = ",".join(map(str, sorted(_seeds(mine))))
        machines = f"machines: reference {seed_spread.describe(seed_spread.machine_of(ref))}; this run {seed_spread.describe(seed_spread.machine_of(mine))}"
        label = f"{name} ({ref['version']}; seeds {seeds}" + (" matched)" if one.matched else ")")
        rows.append([label, machines + ("; the same: compared exactly" if exact else ""), "", "", "", "", ""])
        for score in [reference.table[k] for k in tolerances if k in reference.table and k in ref["summary"]]:
            before, after = one.values(score.name)
            tol = tolerances[score.name]
            allowed, allowed_text = (0.0, "0 (exact)") if exact else (None if before is None else tol.allowed(before), str(tol))
            spread = upper_half(ref["summary"], score)
            if not exact and allowed is not None and spread is not None and spread > allowed:  # the reference's seed spread
                allowed, allowed_text = spread, f"{spread:.{score.digits}f} (95% CI)"
            one.add(score, score.name, before, after, allowed, allowed_text)
        extra = seed_spread.spread_checked(reference.table.sweep(), tolerances, ref, mine)
        for score in extra:  # one family: a plain rerun fails one of them about as often as one score
            sd = seed_spread.sweep_sd(everyone, score.name)
            one.add(score, score.name, *one.values(score.name), *one.spread(None if sd is None else seed_spread.factor(len(extra)) * sd, score.digits))
        for rate in (r for r in seed_spread.FRACTION_RATES if r in reference.table):
            before = seed_spread.at_fraction(ref, rate, _seeds(mine) if one.matched else None)
            after = seed_spread.at_fraction(mine, rate)
            # The method's own spread when the reference has several of its seeds (its fractions give the
            # degrees of freedom), not one pooled with noisier methods that would hide a change of a quiet one.
            sd = seed_spread.fraction_sd([ref], rate) if len(_seeds(ref)) > 1 else seed_spread.fraction_sd(everyone, rate)
            allowed = one.spread(None if sd is None else seed_spread.factor(len(before)) * sd, 3)
            given = None if exact else tolerances.get(f"{rate}{seed_spread.AT_FRACTION}")  # set with --tolerance
            for ratio, value in before.items():
                if ratio in after:
                    at = allowed if given is None or value is None else (given.allowed(value), str(given))
                    one.add(reference.table[rate], f"{rate} at r = {ratio:g}", value, after[ratio], *at)
    return CheckResult(rows, worse)
