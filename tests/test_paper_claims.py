"""The paper's Figure 2 claims (benchbias.scoring.claims): each claim holding and failing on synthetic
cells, claims that cannot be evaluated, per-seed evaluation, the benchmark flag, results files,
the report, leaderboard pages and ``benchbias claims`` through the CLI; then a real smoke run of a
benchmark that carries the claims."""

import copy
import json
import shutil

import pytest
import yaml
from support import REPO, run_cli

from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark, parse_benchmark
from benchbias.foundation.config import ConfigError
from benchbias.foundation.jsonio import read_json
from benchbias.foundation.scoretable import ScoreTable
from benchbias.leaderboard import board as leaderboard
from benchbias.records.schemas import RESULTS_SCHEMA
from benchbias.records.validation import InvalidFile, check_results
from benchbias.report.html import write_report
from benchbias.scoring import claims as paper_claims
from benchbias.scoring import claims_section
from benchbias.scoring.claims import evaluate, evaluate_per_seed
from benchbias.scoring.summary import RANKING_RULE, VERDICT_INPUTS, method_summary, per_fraction, rank, reference_methods

FRACTIONS = [round(0.1 * i, 1) for i in range(11)]
BOARD = REPO / "leaderboards" / "synthetic-quick.json"


def small_table() -> ScoreTable:
    """The score table of the committed board, cut to the scores the verdict and the claims are computed
    from (the synthetic cells below have those and nothing else)."""
    rows = read_json(BOARD)["score_table"]
    return ScoreTable.from_json([row for row in rows if row["name"] in VERDICT_INPUTS or row["name"] in ("changed", "sensitivity", "mae_tumor_inputs")])


TABLE = small_table()


def cell(ratio: float, seed: int, healthy: float, erasure: float, tumor_error: float = 0.04) -> dict:
    """A cell whose judge calls ``healthy`` of the healthy inputs tumor (all of them hallucinations)
    and loses the tumor call on ``erasure`` of the tumor inputs, with pixel error ``tumor_error`` on them."""
    tumor_inputs = 1.0 - erasure
    scores = {
        "tumor_called": (healthy + tumor_inputs) / 2,
        "tumor_called_healthy_inputs": healthy,
        "tumor_called_tumor_inputs": tumor_inputs,
        "hallucination": healthy,
        "erasure": erasure,
        "flip_rate": (healthy + erasure) / 2,
        "mae": 0.05,
        "mae_tumor_inputs": tumor_error,
    }
    return {"ratio": ratio, "seed": seed, "scores": scores}


def cells(healthy, erasure, seed: int = 0, ratios=FRACTIONS, tumor_error=0.04) -> list[dict]:
    """One seed's sweep: ``healthy``, ``erasure`` and ``tumor_error`` are a number, a list (one value per
    fraction) or a function of r."""

    def at(values, i, r):
        return values(r) if callable(values) else (values[i] if isinstance(values, list) else values)

    return [cell(r, seed, at(healthy, i, r), at(erasure, i, r), at(tumor_error, i, r)) for i, r in enumerate(ratios)]


def l1_error(r: float) -> float:
    """The paper's L1: high pixel error on tumor inputs only when trained on healthy targets."""
    return 0.06 if r == 0 else 0.04


def paper_like(seeds=(0,), ratios=FRACTIONS) -> dict[str, list[dict]]:
    """What the paper saw: CycleGAN's calls follow the target, CondGAN's drift a little, L1's stay flat
    and L1 loses the tumors only when trained on healthy targets."""
    return {
        "cyclegan": [c for s in seeds for c in cells(lambda r: 0.05 + 0.8 * r, 0.1, s, ratios)],
        "condgan": [c for s in seeds for c in cells(lambda r: 0.1 + 0.2 * r, 0.1, s, ratios)],
        "l1": [c for s in seeds for c in cells(0.02, lambda r: 0.9 if r == 0 else 0.1, s, ratios, l1_error)],
    }


def by_id(claims) -> dict:
    return {c.id: c for c in claims}


# ---- each claim, holding and failing -----------------------------------------------------------


def test_the_papers_findings_satisfy_all_four_claims():
    claims = evaluate(paper_like(), TABLE)
    assert [c.id for c in claims] == ["c1", "c2", "c3", "c4"]
    assert all(c.holds and c.evaluated for c in claims), [c.detail for c in claims]
    c1 = by_id(claims)["c1"]
    assert c1.detail == "c1 CycleGAN's tumor calls on healthy inputs rise with r: rho 1.00 >= 0.9, rise 0.72 >= 0.4 — holds"
    assert c1.figures["rates"][0] == pytest.approx(0.05) and c1.figures["rise"] == pytest.approx(0.72)
    assert "the percentage of the images diagnosed with tumors increases" in c1.paper
    assert paper_claims.summary_line(claims) == "paper claims: 4 of 4 hold"


@pytest.mark.parametrize(
    "rates, why",
    [
        ([0.1, 0.6, 0.2, 0.7, 0.1, 0.6, 0.2, 0.7, 0.1, 0.6, 0.8], "rho"),  # up and down: no steady rise
        ([0.10 + 0.02 * i for i in range(11)], "rise"),  # steady, but only 0.18 end to end
        ([0.3] * 11, "rho n/a"),  # not moving at all
    ],
)
def test_c1_fails_without_a_steady_large_rise(rates, why):
    claims = paper_like()
    claims["cyclegan"] = cells(rates, 0.1)
    c1 = by_id(evaluate(claims, TABLE))["c1"]
    assert c1.evaluated and not c1.holds
    assert c1.detail.endswith("— fails") and f"{why}" in c1.detail


def test_c2_fails_when_another_baseline_is_more_composition_sensitive():
    claims = paper_like()
    claims["l1"] = cells(0.02, lambda r: 1.0 - r)  # erasure falling straight with r: slope -1
    c2 = by_id(evaluate(claims, TABLE))["c2"]
    assert not c2.holds and c2.evaluated
    assert c2.figures["sensitivity"]["l1"] == pytest.approx(1.0) and c2.figures["sensitivity"]["cyclegan"] == pytest.approx(0.8)
    assert "sensitivity 0.80, not above condgan 0.20, l1 1.00" in c2.detail
    # The number is the summary's own sensitivity: c2 reuses method_summary, it does not recompute it.
    assert c2.figures["sensitivity"]["cyclegan"] == method_summary(claims["cyclegan"], TABLE)["sensitivity"]


def test_c3_allows_a_tenth_and_no_more():
    claims = paper_like()
    claims["l1"] = cells([0.2] * 10 + [0.1 + 0.2], lambda r: 0.9 if r == 0 else 0.1)  # 0.30000000000000004 - 0.2
    assert by_id(evaluate(claims, TABLE))["c3"].holds, "a spread of 0.1 up to round-off is within the band"
    claims["l1"] = cells([0.0] * 10 + [0.12], lambda r: 0.9 if r == 0 else 0.1)
    c3 = by_id(evaluate(claims, TABLE))["c3"]
    assert not c3.holds and "max - min over r 0.12 > 0.1 (0.00 at r = 0, 0.12 at r = 1)" in c3.detail


@pytest.mark.parametrize(
    "erasure, tumor_error, problem",
    [
        (lambda r: 0.9 if r < 0.4 else 0.1, l1_error, "at most 0.90 (r = 0.2) > 0.25"),  # still erasing at 20% and 30%
        (lambda r: 0.9 if r == 0 else 0.1, lambda r: 0.046 if r == 0 else 0.04, "= 1.15x its largest"),  # no high error at 0% tumor
        (lambda r: 0.9 if r == 0 else 0.1, lambda r: {0.0: 0.06, 0.6: 0.055}.get(r, 0.04), "(0.0550, r = 0.6"),  # high error elsewhere too
    ],
)
def test_c4_fails_when_l1_errs_beyond_0_percent_or_not_at_0(erasure, tumor_error, problem):
    claims = paper_like()
    claims["l1"] = cells(0.02, erasure, tumor_error=tumor_error)
    c4 = by_id(evaluate(claims, TABLE))["c4"]
    assert not c4.holds and problem in c4.detail, c4.detail


def test_c4_ignores_10_percent_and_reports_but_does_not_require_erasure_at_0():
    claims = paper_like()
    claims["l1"] = cells(0.02, lambda r: {0.0: 0.9, 0.1: 0.7}.get(r, 0.1), tumor_error=l1_error)
    assert by_id(evaluate(claims, TABLE))["c4"].holds
    claims["l1"] = cells(0.02, 0.1, tumor_error=lambda r: {0.0: 0.06, 0.1: 0.07}.get(r, 0.04))  # tumors still called at 0%: wrong, but recognisable
    c4 = by_id(evaluate(claims, TABLE))["c4"]
    assert c4.holds and "erasure at r = 0 0.10" in c4.detail and c4.figures["error_ratio"] == pytest.approx(1.5)


# ---- what cannot be evaluated --------------------------------------------------------------------


def test_a_missing_baseline_leaves_its_claims_not_evaluated():
    without_condgan = {k: v for k, v in paper_like().items() if k != "condgan"}
    claims = by_id(evaluate(without_condgan, TABLE))
    assert not claims["c2"].evaluated and not claims["c2"].holds
    assert claims["c2"].detail == ("c2 CycleGAN is the most composition-sensitive of the three: not evaluated: needs cyclegan, condgan, l1 (missing: condgan)")
    assert claims["c2"].verdict == "not evaluated"
    assert all(claims[c].holds for c in ("c1", "c3", "c4")), "claims on the baselines present are still checked"
    nothing = evaluate({}, TABLE)
    assert [c.evaluated for c in nothing] == [False] * 4 and paper_claims.summary_line(nothing) == "paper claims: 0 of 4 hold (4 not evaluated)"


def test_a_sweep_without_0_and_1_cannot_check_c4():
    c4 = by_id(evaluate(paper_like(ratios=[0.2, 0.5, 0.8]), TABLE))["c4"]
    assert not c4.evaluated and "needs the target fractions 0 and 1" in c4.detail


# ---- seeds -------------------------------------------------------------------------------------


def test_each_seed_is_checked_alone_and_the_seeds_pooled():
    claims = paper_like(seeds=(0, 1))
    # Seed 1's L1 drifts on healthy inputs (0 to 0.2) and still erases at 20%: c3 and c4 fail on it alone.
    claims["l1"] = cells(0.0, lambda r: 0.9 if r == 0 else 0.1, 0, tumor_error=l1_error) + cells(
        lambda r: 0.2 * r, lambda r: {0.0: 0.9, 0.2: 0.5}.get(r, 0.1), 1, tumor_error=l1_error
    )
    per_seed = evaluate_per_seed(claims, TABLE)
    assert sorted(per_seed) == [0, 1]
    assert all(c.holds for c in per_seed[0])
    assert [c.holds for c in per_seed[1]] == [True, True, False, False]
    pooled = by_id(evaluate(claims, TABLE))
    assert pooled["c3"].holds and pooled["c3"].figures["spread"] == pytest.approx(0.1), "pooled: the mean of the two seeds"
    assert not pooled["c4"].holds, "pooled erasure at 20% is 0.3, over erasure at 100% (0.1) + 0.15"


# ---- results files and leaderboards ------------------------------------------------------------


def results_of(cells_by_method: dict[str, list[dict]], plugins: dict[str, str] | None = None, flag: bool = True) -> dict:
    """A valid synthetic-quick results dict around synthetic cells (no training); ``plugins`` maps a
    method name to its plugin (default: the name)."""
    board = read_json(BOARD)
    template = next(e for e in board["entries"] if e["method"] == "l1")
    templates = {e["method"]: e for e in board["entries"]}
    bench = load_benchmark(find_benchmark("synthetic-quick"))
    config = json.loads(json.dumps(bench.to_dict()))
    if not flag:
        config.pop("paper_claims")
    seeds = sorted({c["seed"] for cs in cells_by_method.values() for c in cs})
    methods = {}
    for name, method_cells in cells_by_method.items():
        method_cells = [{**c, "method": name} for c in method_cells]
        methods[name] = {
            **{k: templates.get((plugins or {}).get(name, name), template)[k] for k in ("version", "origin", "params", "steps")},
            "plugin": (plugins or {}).get(name, name),
            "paired": name != "cyclegan",
            "cells": method_cells,
            "per_fraction": per_fraction(method_cells, TABLE),
            "summary": method_summary(method_cells, TABLE),
        }
    prov = {
        k: template[k]
        for k in ("packages", "python", "platform", "device", "git_commit", "benchbias_version", "wall_time_s", "cells_run", "cells_reused", "compute_time_s")
    }
    results = {
        "schema": RESULTS_SCHEMA,
        "benchmark": {"name": bench.name, "file": bench.source_file, "config_hash": bench.hash(), "protocol_hash": bench.protocol_hash(), "config": config},
        "dataset": {"fingerprint": board["dataset_fingerprint"]},
        "classifier": template["classifier"],
        "score_table": TABLE.to_json(),
        "methods": methods,
        "ranking": rank({name: m["summary"] for name, m in methods.items()}, references=reference_methods(methods)),
        "ranking_rule": RANKING_RULE,
        "provenance": {
            **prov,
            "seeds": seeds,
            "started": template["run_started"],
            "finished": template["run_finished"],
            "compute_settings": {"device": "cpu", "threads": 1, "amp": False},
        },
    }
    section = claims_section.section(results)
    if section is not None:
        results["paper_claims"] = section
    return check_results(json.loads(json.dumps(results)), "results.json")


def test_results_carry_the_claims_when_the_benchmark_does_and_the_baselines_ran():
    results = results_of(paper_like(seeds=(0, 1)))
    section = results["paper_claims"]
    assert section["holding"] == 4 and section["methods"] == {"cyclegan": "cyclegan", "condgan": "condgan", "l1": "l1"}
    assert [row["seed"] for row in section["per_seed"]] == [0, 1] and section["seeds"] == [0, 1]
    assert claims_section.run_lines(results)[0] == "paper claims: 4 of 4 hold"
    assert len(claims_section.run_lines(results)) == 5
    assert "paper_claims" not in results_of(paper_like(), flag=False), "the benchmark does not carry them"
    assert claims_section.run_lines(results_of(paper_like(), flag=False)) == []
    only_l1 = results_of({"l1": paper_like()["l1"]})
    assert "paper_claims" not in only_l1
    assert claims_section.run_lines(only_l1) == ["paper claims: not evaluated: needs cyclegan, condgan, l1 (missing: cyclegan, condgan)"]


def test_an_old_results_file_without_the_section_stays_valid_and_a_forged_one_is_caught():
    results = results_of(paper_like())
    old = copy.deepcopy(results)
    del old["paper_claims"]
    check_results(old, "old.json")
    forged = copy.deepcopy(results)
    forged["paper_claims"]["claims"][0]["holds"] = False
    with pytest.raises(InvalidFile, match=r"forged.json: paper_claims.claims\[0\].holds: False does not match True computed from the cells"):
        check_results(forged, "forged.json")


def test_a_section_computed_by_an_earlier_definition_of_the_claims_is_recomputed_on_read():
    results = results_of(paper_like())
    assert results["paper_claims"]["definition"] == claims_section.DEFINITION
    earlier = copy.deepcopy(results)
    del earlier["paper_claims"]["definition"]  # the first definition wrote none
    earlier["paper_claims"]["claims"][3]["holds"] = False
    earlier["paper_claims"]["holding"] = 3
    read = check_results(earlier, "earlier.json")
    assert read["paper_claims"] == results["paper_claims"], "recomputed under today's definition"
    stale = copy.deepcopy(results)
    stale["paper_claims"]["holding"] = 3
    with pytest.raises(InvalidFile, match=r"stale.json: paper_claims.holding: 3 does not match 4 computed from the cells"):
        check_results(stale, "stale.json")


def test_baselines_are_found_by_plugin_name():
    named = {"cg-small": "cyclegan", "cond": "condgan", "l1-wide": "l1", "l1": "l1"}
    data = paper_like()
    flat = cells(0.5, 0.5)  # a second l1 method: the one named after the plugin stands for it
    results = results_of({"cg-small": data["cyclegan"], "cond": data["condgan"], "l1-wide": flat, "l1": data["l1"]}, plugins=named)
    assert results["paper_claims"]["methods"] == {"cyclegan": "cg-small", "condgan": "cond", "l1": "l1"}
    assert results["paper_claims"]["holding"] == 4


def test_the_report_has_a_paper_claims_section_and_figure(tmp_path):
    results = results_of(paper_like())
    paths = write_report(tmp_path, results)
    page = paths["html"].read_text()
    assert "<h2>Paper claims</h2>" in page and "paper claims: 4 of 4 hold" in page
    assert page.index("<h2>Paper claims</h2>") < page.index("<h2>The judges</h2>"), "near the top"
    for claim in paper_claims.CLAIMS:
        assert f"{claim.id}: {claim.statement}".replace("'", "&#x27;") in page
    assert "rho 1.00 &gt;= 0.9, rise 0.72 &gt;= 0.4" in page
    assert paths["paper-claims"].name == "paper-claims.png" and paths["paper-claims"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plain = write_report(tmp_path / "plain", results_of(paper_like(), flag=False))
    assert "paper-claims" not in plain and "Paper claims" not in plain["html"].read_text()


# ---- the benchmark flag ------------------------------------------------------------------------


def smoke_raw():
    return yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())


def test_paper_claims_flag_keeps_the_hashes_of_benchmarks_without_it():
    plain = parse_benchmark(smoke_raw(), "x")
    assert plain.paper_claims is False and "paper_claims" not in plain.to_dict()
    raw = smoke_raw()
    raw["paper_claims"] = False
    assert parse_benchmark(raw, "x").hash() == plain.hash()
    raw["paper_claims"] = True
    flagged = parse_benchmark(raw, "x")
    assert flagged.paper_claims is True and flagged.to_dict()["paper_claims"] is True
    assert flagged.protocol_hash() == plain.protocol_hash(), "outside the protocol: runs stay comparable"
    assert flagged.hash() != plain.hash()
    assert load_benchmark(find_benchmark("synthetic-quick")).paper_claims and load_benchmark(find_benchmark("brats2013-paper")).paper_claims
    assert not load_benchmark(find_benchmark("synthetic-smoke")).paper_claims


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_paper_claims_flag_must_be_a_boolean(value):
    raw = smoke_raw()
    raw["paper_claims"] = value
    with pytest.raises(ConfigError) as err:
        parse_benchmark(raw, "bench.yaml")
    assert str(err.value) == f"bench.yaml: paper_claims: must be true or false, got {value!r}"


# ---- benchbias claims PATH, and the leaderboard page --------------------------------------------


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.slow
def test_claims_command_exit_codes(tmp_path):
    passing = write_json(tmp_path / "pass" / "results.json", results_of(paper_like(seeds=(0, 1))))
    result = run_cli("claims", str(passing))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "pooled over seeds 0, 1:" in out and "seed 0: 4 of 4 hold" in out and "seed 1: 4 of 4 hold" in out
    assert out.rstrip().endswith("paper claims: 4 of 4 hold, seeds 0, 1 pooled")
    assert run_cli("claims", str(passing.parent)).returncode == 0, "a run folder is read through its results.json"

    data = paper_like()
    data["cyclegan"] = cells(0.3, 0.1)
    failing = write_json(tmp_path / "fail.json", results_of(data))
    result = run_cli("claims", str(failing))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "c1 CycleGAN's tumor calls on healthy inputs rise with r: rho n/a" in result.stdout and "paper claims: 2 of 4 hold" in result.stdout

    missing = write_json(tmp_path / "l1-only.json", results_of({"l1": data["l1"]}))
    result = run_cli("claims", str(missing))
    assert result.returncode == 1 and "not evaluated: needs cyclegan, condgan, l1 (missing: cyclegan, condgan)" in result.stdout

    (tmp_path / "empty").mkdir()
    for bad in (write_json(tmp_path / "bad.json", {"schema": "something else"}), tmp_path / "nowhere.json", tmp_path / "empty"):
        result = run_cli("claims", str(bad))
        assert result.returncode == 2, result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("benchbias: error: ") and not result.stdout


@pytest.mark.slow
def test_a_leaderboard_of_a_benchmark_with_claims_shows_them(tmp_path):
    results = results_of(paper_like(seeds=(0, 1)))
    path, _ = leaderboard.submit(results, "results.json", folder=tmp_path)
    page = path.with_suffix(".md").read_text()
    assert "## Paper claims" in page and "**paper claims: 4 of 4 hold**" in page
    assert "| c4: L1 errs on tumor inputs only when trained on 0% tumor | holds |" in page and "| seed 0 | seed 1 |" in page
    result = run_cli("claims", str(path))
    assert result.returncode == 0 and "leaderboard of synthetic-quick" in result.stdout, result.stdout + result.stderr
    assert run_cli("leaderboard", "validate", str(path)).returncode == 0
    # Two baselines only: no section (the claims need all three).
    board = read_json(path)
    board["entries"] = [e for e in board["entries"] if e["plugin"] != "condgan"]
    assert "Paper claims" not in leaderboard.render(board)


# ---- a real run -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_of_a_benchmark_that_carries_the_claims_evaluates_them(tmp_path):
    """synthetic-smoke with ``paper_claims: true`` (its pinned judges beside it), three baselines, three
    fractions: run prints the claims, results.json and the report carry them, ``claims`` agrees."""
    raw = smoke_raw()
    raw["paper_claims"] = True
    (tmp_path / "synthetic-smoke.yaml").write_text(yaml.safe_dump(raw))
    shutil.copytree(REPO / "benchmarks" / "judges", tmp_path / "judges", ignore=lambda d, names: [n for n in names if not n.startswith("synthetic-smoke")])
    out = tmp_path / "run"
    env = {"BENCHBIAS_CACHE": str(tmp_path / "cache")}
    result = run_cli(
        "run", str(tmp_path / "synthetic-smoke.yaml"), "--methods", "l1", "cyclegan", "condgan", "--out", str(out), "--no-progress", "--jobs", "1", env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    section = results["paper_claims"]
    lines = result.stdout.rstrip().splitlines()
    assert lines[-5] == f"paper claims: {section['holding']} of 4 hold"
    assert [line.strip() for line in lines[-4:]] == [c["detail"] for c in section["claims"]]
    assert "<h2>Paper claims</h2>" in (out / "report.html").read_text() and (out / "paper-claims.png").is_file()
    claims = run_cli("claims", str(out))
    assert claims.returncode == (0 if section["holding"] == 4 else 1), claims.stdout + claims.stderr
    assert f"paper claims: {section['holding']} of 4 hold" in claims.stdout
