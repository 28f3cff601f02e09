"""The score table: what each number of a results file is, and how it is averaged, shown and checked.

Every score is declared once, as a :class:`Score`, next to the code that computes it: per-cell scores
beside their metric in :mod:`benchbias.scoring.metrics` (or a plugin's ``register_metrics``), scores over the
sweep beside their formula in :mod:`benchbias.scoring.summary`. A run writes the table it used into
``results.json`` (``score_table``), and summaries, ``check``, tables, figures and leaderboards read
their columns from that table: a plugin's score shows up everywhere without the plugin installed.

Only the standard library: leaderboards, ``compare`` and ``check`` use this without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

KINDS = ("rate", "error", "similarity", "agreement", "count")
BETTER = ("lower", "higher", "neither")
LEVELS = ("cell", "sweep")


@dataclass(frozen=True)
class Score:
    """One score. ``kind``: a rate (a share of slices), an error, a similarity, an agreement between
    two judges, or a count; ``better``: which direction is an improvement (``neither`` for context
    numbers such as counts, never checked)."""

    name: str
    label: str
    help: str
    kind: str = "rate"
    digits: int = 3
    bounds: tuple[float | None, float | None] = (0.0, 1.0)
    better: str = "lower"
    per_fraction: bool = True  # averaged over seeds at each target fraction (``per_fraction`` rows)
    sweep: bool = False  # averaged over the sweep into the method summary, per seed and with 95% intervals
    tolerance: float | None = None  # ``check`` fails when it worsens by more than this (its own units); None: not checked
    verdict: bool = False  # a column of the ranking table
    level: str = "cell"  # "cell": one value per (method, fraction, seed) cell; "sweep": derived over a whole sweep
    origin: str = "benchbias"  # who declared it: benchbias, or a plugin's release

    def __post_init__(self) -> None:
        problems = [
            f"kind {self.kind!r} is not one of {KINDS}" if self.kind not in KINDS else "",
            f"better {self.better!r} is not one of {BETTER}" if self.better not in BETTER else "",
            f"level {self.level!r} is not one of {LEVELS}" if self.level not in LEVELS else "",
            "name must be a lower-case identifier" if not (self.name.isidentifier() and self.name.islower()) else "",
            "a score checked by `check` must say which direction is better" if self.tolerance is not None and self.better == "neither" else "",
        ]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError(f"score {self.name!r}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bounds"] = list(self.bounds)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "bounds": tuple(data.get("bounds", (0.0, 1.0)))})

    def worse_by(self, before: float, after: float) -> float:
        """How much worse ``after`` is than ``before`` (negative: better)."""
        return after - before if self.better == "lower" else before - after

    def within_bounds(self, value: float) -> bool:
        low, high = self.bounds
        return (low is None or value >= low) and (high is None or value <= high)


class ScoreTable:
    """An ordered set of scores, by name."""

    def __init__(self, scores: Iterable[Score]) -> None:
        self.scores: dict[str, Score] = {}
        for score in scores:
            known = self.scores.get(score.name)
            if known is None:
                self.scores[score.name] = score
            # A check tolerance is a default of `benchbias check`, not what a score means: files made
            # before a tolerance was re-derived stay comparable, and the first declaration's stands.
            elif replace(known, tolerance=None) != replace(score, tolerance=None):
                raise ValueError(f"score {score.name!r} is declared twice, differently ({known.origin} and {score.origin})")

    @classmethod
    def from_json(cls, rows: list[dict[str, Any]]) -> ScoreTable:
        return cls(Score.from_dict(row) for row in rows)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self]

    def __iter__(self):
        return iter(self.scores.values())

    def __contains__(self, name: str) -> bool:
        return name in self.scores

    def __getitem__(self, name: str) -> Score:
        return self.scores[name]

    def get(self, name: str) -> Score | None:
        return self.scores.get(name)

    def merged(self, other: ScoreTable) -> ScoreTable:
        return ScoreTable([*self, *other])

    def cell(self) -> list[Score]:
        return [s for s in self if s.level == "cell"]

    def per_fraction(self) -> list[Score]:
        return [s for s in self if s.level == "cell" and s.per_fraction]

    def sweep(self) -> list[Score]:
        """Scores a method summary holds: the derived ones and the sweep means of cell scores."""
        return [s for s in self if s.level == "sweep" or s.sweep]

    def verdict(self) -> list[Score]:
        return [s for s in self if s.verdict]

    def more(self) -> list[Score]:
        """Sweep scores that are not verdict columns, for the "more scores" tables."""
        return [s for s in self.sweep() if not s.verdict]

    def checked(self) -> list[Score]:
        return [s for s in self.sweep() if s.tolerance is not None]
