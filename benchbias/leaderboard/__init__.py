"""Leaderboards: the record of every submitted method of a benchmark, its page and figure, and
comparing and checking results against it."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "board": [
            "LeaderboardError",
            "add_verification",
            "check_before_run",
            "leaderboard_dir",
            "leaderboard_path",
            "submit",
            "write",
        ],
        "page": ["SEEDS_NOTE", "ranked", "ranked_rows", "render"],
        "figure": ["leaderboard_png"],
        "compare": ["CheckError", "check", "compare", "load_scored", "parse_tolerances"],
    },
)
