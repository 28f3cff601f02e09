"""The default tolerances of ``benchbias check``: how far each checked sweep score may worsen against
its reference before ``check`` fails (in the score's own units).

Each is 2 x sqrt(2) x the seed-to-seed standard deviation of that score pooled over the stable
baselines of the committed synthetic-quick leaderboard: two standard deviations of the difference of
two single-seed runs. docs/results/synthetic-quick.md ("Check tolerances") has the derivation and its
check across instruction sets. They live apart from the metrics: a tolerance is what ``check`` allows,
not what a score means, so re-deriving one changes no stored result's scoring key.
"""

CHECK_TOLERANCES: dict[str, float] = {
    "changed": 0.019,
    "sensitivity": 0.31,
    "hallucination": 0.042,
    "erasure": 0.051,
    "flip_rate": 0.018,
    "mae": 0.0019,
}
