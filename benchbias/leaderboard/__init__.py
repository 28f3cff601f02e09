"""Leaderboards: the record of every submitted method of a benchmark, its page and figure, and
comparing and checking results against it."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "board": [
            "SEEDS_NOTE",
            "LeaderboardError",
            "check_before_run",
            "leaderboard_dir",
            "leaderboard_path",
            "ranked",
            "ranked_rows",
            "render",
            "submit",
            "write",
        ],
        "figure": ["leaderboard_png"],
        "compare": ["CheckError", "check", "compare", "load_scored", "parse_tolerances"],
    },
)
