"""The "Paper claims" section of a leaderboard's Markdown page."""

from __future__ import annotations

from typing import Any

from benchbias.report.tables import Rows
from benchbias.scoring import claims as paper_claims
from benchbias.scoring.claims_section import claims_in, section


def claims_markdown(board: dict[str, Any]) -> list[str]:
    """The "Paper claims" section: when the benchmark file carries the paper's claims and the board
    has the three baselines, each claim with its seeds pooled and on each seed alone."""
    found = section(board)
    if found is None:
        return []
    claims = claims_in(found)
    seeds = found["per_seed"]
    rows = Rows(["claim", "verdict", "measured", *(f"seed {row['seed']}" for row in seeds)] if len(seeds) > 1 else ["claim", "verdict", "measured"])
    for i, claim in enumerate(claims):
        alone = [paper_claims.ClaimResult.from_dict(row["claims"][i]).verdict for row in seeds] if len(seeds) > 1 else []
        rows.body.append([f"{claim.id}: {claim.statement}", claim.verdict, claim.measured, *alone])
    stand_ins = ", ".join(f"{plugin}: {name}" for plugin, name in found["methods"].items())
    pooled = f"seeds {', '.join(map(str, found['seeds']))} pooled" if len(seeds) > 1 else f"seed {found['seeds'][0]}"
    return [
        "## Paper claims",
        (
            f"What Cohen, Luck & Honari read in their Figure 2, as four claims checked on the baselines ({stand_ins}), {pooled}: "
            f"**{paper_claims.summary_line(claims)}**. The thresholds are benchbias's; `benchbias claims leaderboards/{board['benchmark']}.json` "
            "prints the details."
        ),
        rows.markdown(),
        "In the paper's words:",
        "\n".join(f'- {c.id}: "{c.paper}"' for c in claims),
    ]
