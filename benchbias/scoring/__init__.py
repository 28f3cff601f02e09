"""Scores: the metrics of one cell, a method's summary over the sweep and the ranking, and the
paper's claims."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "metrics": [
            "BUILTIN_METRICS",
            "JudgeCalls",
            "MetricError",
            "PixelDifference",
            "SecondJudge",
            "Segmentation",
            "Similarity",
            "score_cell",
            "score_table",
        ],
        "builtin": ["default_table"],
        "summary": ["RANKING_RULE", "method_summary", "per_fraction", "rank", "trend"],
        "claims": ["CLAIMS", "ClaimResult", "evaluate"],
    },
)
