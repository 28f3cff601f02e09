"""The metric seam: a plugin's score reaches results.json, the report and the leaderboard; stored
translations are rescored, not retrained; the built-in image metrics and intervals on known inputs."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from support import run_cli

from benchbias.foundation.contract import Evidence
from benchbias.foundation.scoretable import Score, ScoreTable
from benchbias.leaderboard.compare import Scored, check, parse_tolerances
from benchbias.scoring.builtin import default_table
from benchbias.scoring.metrics import MetricError, SecondJudge, Similarity, bootstrap_interval, cohen_kappa, score_cell
from benchbias.scoring.summary import method_summary

PLUGIN = textwrap.dedent(
    '''
    """A third party's metric: how much brighter a translation is than its real target, on average."""
    from benchbias.api import Metric, Score, hookimpl


    class BrightnessShift(Metric):
        name = "brightness-shift"
        scores = (
            Score("brightness_shift", "brightness shift", "mean of translation minus real target", kind="error",
                  bounds=(-1.0, 1.0), better="neither", sweep=True),
        )

        def compute(self, e):
            return {"brightness_shift": (e.translated - e.real).flatten(1).mean(1).double().numpy()}


    @hookimpl
    def register_metrics(register):
        register(BrightnessShift)
    '''
)


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    """synthetic-smoke's l1 without, then with, a metric plugin from a plugin folder (two CLI runs
    into one folder)."""
    root = tmp_path_factory.mktemp("metric-plugin")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "brightness.py").write_text(PLUGIN)
    out = root / "run"
    env = {"BENCHBIAS_LEADERBOARDS": str(root / "boards")}
    before = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(out), "--no-progress", "--threads", "1", env=env)
    assert before.returncode == 0, before.stderr[-2000:]
    first = json.loads((out / "results.json").read_text())
    after = run_cli(
        "run", "synthetic-smoke", "--methods", "l1", "--out", str(out), "--no-progress", "--threads", "1", "--plugin-dir", str(plugins), "--submit", env=env
    )
    assert after.returncode == 0, after.stderr[-2000:]
    return out, first, json.loads((out / "results.json").read_text()), root / "boards" / "synthetic-smoke.md", after


@pytest.mark.slow
def test_a_plugin_score_reaches_results_report_and_leaderboard(plugin_run):
    out, _, results, board_md, _ = plugin_run
    declared = next(s for s in results["score_table"] if s["name"] == "brightness_shift")
    assert declared["origin"].startswith("brightness.py sha256:"), "the table says which plugin declared the score"
    for cell in results["methods"]["l1"]["cells"]:
        value, (low, high) = cell["scores"]["brightness_shift"], cell["ci95"]["brightness_shift"]
        assert -1 < low <= value <= high < 1
    assert "brightness_shift" in results["methods"]["l1"]["summary"] and "brightness_shift" in results["methods"]["l1"]["per_fraction"][0]["mean"]
    assert "brightness shift" in (out / "report.html").read_text()
    markdown = board_md.read_text()
    assert "## More scores over the sweep" in markdown and "brightness shift" in markdown


@pytest.mark.slow
def test_a_new_metric_rescores_stored_translations_without_training(plugin_run):
    _, first, results, _, after = plugin_run
    prov = results["provenance"]
    assert (prov["cells_run"], prov["cells_reused"], prov["cells_rescored"]) == (0, 3, 3)
    for old, new in zip(first["methods"]["l1"]["cells"], results["methods"]["l1"]["cells"]):
        assert {k: new["scores"][k] for k in old["scores"]} == old["scores"], "the other scores are unchanged"
        assert new["train_time_s"] == old["train_time_s"], "not retrained"


@pytest.mark.slow
def test_the_terminal_shows_intervals_and_more_scores(plugin_run):
    after = plugin_run[4]
    assert "brackets: 95% bootstrap interval over holdout slices" in after.stdout
    assert "more scores over the sweep (" in after.stdout and "brightness shift" in after.stdout


def evidence(translated, real, mask=None, p=None, p_real=None, second=None, second_real=None):
    n = len(translated)
    tumor = np.arange(n) % 2 == 1
    p = np.where(tumor, 0.9, 0.1) if p is None else p
    return Evidence(
        source=real,
        translated=translated,
        real=real,
        tumor_mask=torch.zeros_like(real, dtype=torch.bool) if mask is None else mask,
        source_is_tumor=tumor,
        brain_fraction=np.ones(n),
        out_of_range=np.zeros(n),
        p_tumor=p,
        p_tumor_real=p if p_real is None else p_real,
        second_p_tumor=second,
        second_p_tumor_real=second_real,
    )


def test_ssim_and_psnr_on_known_images():
    real = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(4, 1, 32, 32, dtype=torch.bool)
    mask[1, 0, 10:20, 10:20] = True
    same, _ = score_cell([Similarity()], evidence(real.clone(), real, mask))
    assert same["ssim"] == pytest.approx(1.0) and same["psnr"] == 100.0, "an exact copy: SSIM 1, PSNR at its 100 dB ceiling"
    assert same["ssim_inside_tumor"] == pytest.approx(1.0) and same["ssim_outside_tumor"] == pytest.approx(1.0)
    shifted = (real + 0.1).clamp(0, 1)
    off = shifted.clone()
    off[1, 0, 10:20, 10:20] = real[1, 0, 10:20, 10:20]  # exact inside the tumor of slice 1
    scores, intervals = score_cell([Similarity()], evidence(off, real, mask))
    mse = ((off - real) ** 2).flatten(1).mean(1)
    assert scores["psnr"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-5)
    assert scores["psnr_inside_tumor"] == 100.0 and scores["psnr_outside_tumor"] < 30
    assert scores["ssim"] < 1 and intervals["ssim"][0] <= scores["ssim"] <= intervals["ssim"][1]


def test_second_judge_agreement_and_kappa():
    n = 8
    real = torch.zeros(n, 1, 8, 8)
    first = np.array([0.9, 0.9, 0.1, 0.1, 0.9, 0.1, 0.9, 0.1])
    second = np.array([0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.9, 0.9])  # disagrees on slices 1 and 7
    scores, _ = score_cell([SecondJudge()], evidence(real, real, p=first, second=second, second_real=second))
    assert scores["judge_agreement"] == 0.75
    assert scores["kappa"] == pytest.approx(cohen_kappa(first > 0.5, second > 0.5)) == pytest.approx(0.5)
    assert cohen_kappa(np.ones(4, bool), np.ones(4, bool)) is None, "undefined when both call everything alike"


def test_bootstrap_interval_contains_the_mean_and_is_deterministic():
    values = np.r_[np.zeros(30), np.ones(10), np.full(5, np.nan)]
    low, high = bootstrap_interval(values, seed=3)
    assert low < 0.25 < high and 0.1 < low and high < 0.4
    assert bootstrap_interval(values, seed=3) == [low, high]
    assert bootstrap_interval(np.full(6, 0.5), 0) == [0.5, 0.5]
    assert bootstrap_interval(np.array([np.nan, 1.0]), 0) is None, "one slice that counts: no interval"


def test_a_metric_returning_undeclared_or_misshapen_scores_is_named():
    class Sloppy(Similarity):
        name = "sloppy"

        def compute(self, e):
            return {**super().compute(e), "extra": np.zeros(len(e.source_is_tumor))}

    real = torch.rand(2, 1, 16, 16)
    with pytest.raises(MetricError, match="metric 'sloppy': compute\\(\\) returned \\['extra'\\]"):
        score_cell([Sloppy()], evidence(real, real))


def test_score_declarations_are_checked():
    with pytest.raises(ValueError, match="kind 'size' is not one of"):
        Score("x", "x", "x", kind="size")
    with pytest.raises(ValueError, match="must say which direction is better"):
        Score("x", "x", "x", better="neither", tolerance=0.1)
    with pytest.raises(ValueError, match="declared twice, differently"):
        ScoreTable([Score("x", "x", "x"), Score("x", "y", "x")])


def test_check_guards_a_higher_is_better_score_when_asked():
    table = default_table().merged(ScoreTable([Similarity.scores[0]]))

    def scored(ssim):
        cells = [
            {
                "ratio": r,
                "seed": 0,
                "scores": {
                    "tumor_called": 0.5,
                    "tumor_called_healthy_inputs": 0.1,
                    "tumor_called_tumor_inputs": 0.9,
                    "hallucination": 0.1,
                    "erasure": 0.1,
                    "flip_rate": 0.1,
                    "mae": 0.05,
                    "ssim": ssim,
                },
            }
            for r in (0.0, 1.0)
        ]
        return Scored(Path("x.json"), "results", "b", "h" * 64, "d", "j" * 64, {"m": [{"version": "v", "summary": method_summary(cells, table)}]}, table)

    assert "ssim" not in parse_tolerances([], table), "not checked by default: no tolerance declared"
    tolerances = parse_tolerances(["ssim=0.01"], table)
    assert check(scored(0.78), scored(0.80), tolerances).worse == ["m ssim"], "a drop of a higher-is-better score is worse"
    assert check(scored(0.82), scored(0.80), tolerances).passed


OLD_CELL_SCORES = (
    "n_holdout",
    "n_healthy_inputs",
    "n_tumor_inputs",
    "tumor_called",
    "tumor_called_healthy_inputs",
    "tumor_called_tumor_inputs",
    "hallucination",
    "erasure",
    "added",
    "removed",
    "flip_rate",
    "mae",
    "mae_healthy_inputs",
    "mae_tumor_inputs",
    "mae_inside_tumor",
    "mae_outside_tumor",
    "out_of_range",
)


SCORING_2_ONLY = ("changed_worst", "dependence_erasure", "dependence_hallucination")


def as_leaderboard_3(board: dict) -> dict:
    """The committed leaderboard as the previous schema (/3) held it: composition sensitivity was the
    largest slope, and scoring version 2's sweep scores did not exist."""
    if board["schema"] == "benchbias.leaderboard/3":
        return board
    dropped = {f"{name}{suffix}" for name in SCORING_2_ONLY for suffix in ("", "_2")}
    for entry in board["entries"]:
        summary = entry["summary"]
        for scores in (summary, summary["ci95"], *summary["per_seed"]):
            for suffix in ("", "_2"):
                scores[f"sensitivity{suffix}"] = scores.pop(f"sensitivity_slope{suffix}")
            for name in dropped:
                scores.pop(name, None)
    board["score_table"] = [row for row in board["score_table"] if row["name"] not in dropped | {"sensitivity_slope", "sensitivity_slope_2"}]
    return {**board, "schema": "benchbias.leaderboard/3"}


def test_files_of_the_previous_schema_are_read_and_hand_edits_still_caught(tmp_path):
    """A leaderboard written by the previous benchbias (schema /2): no score table, sweep means named
    mean_flip_rate and mean_mae, per-fraction rows of 11 scores."""
    from benchbias.foundation.jsonio import dumps
    from benchbias.records.validation import InvalidFile, load_leaderboard

    current = as_leaderboard_3(json.loads((Path(__file__).resolve().parents[1] / "leaderboards" / "synthetic-quick.json").read_text()))
    kept = (
        "tumor_called",
        "tumor_called_healthy_inputs",
        "tumor_called_tumor_inputs",
        "hallucination",
        "erasure",
        "added",
        "removed",
        "flip_rate",
        "mae",
        "mae_inside_tumor",
        "mae_outside_tumor",
    )
    for entry in current["entries"]:  # what a /2 file could hold: the scores of that time (migration adds per-fraction means of its cells' scores)
        for row in entry["per_fraction"]:
            row["mean"] = {k: v for k, v in row["mean"].items() if k in OLD_CELL_SCORES}
            row["ci95"] = {k: v for k, v in row["ci95"].items() if k in OLD_CELL_SCORES}
        for cell in entry["cells"]:
            cell["scores"] = {k: v for k, v in cell["scores"].items() if k in OLD_CELL_SCORES}
            if "ci95" in cell:
                cell["ci95"] = {k: v for k, v in cell["ci95"].items() if k in OLD_CELL_SCORES}
    old = json.loads(json.dumps(current))
    old["schema"] = "benchbias.leaderboard/2"
    del old["score_table"]
    back = {"flip_rate": "mean_flip_rate", "mae": "mean_mae"}
    for entry in old["entries"]:
        s = entry["summary"]
        entry["summary"] = {back.get(k, k): v for k, v in s.items()}
        entry["summary"]["per_seed"] = [{back.get(k, k): v for k, v in row.items()} for row in s["per_seed"]]
        entry["summary"]["ci95"] = {back.get(k, k): v for k, v in s["ci95"].items()}
        for row in entry["per_fraction"]:
            row["mean"], row["ci95"] = {k: row["mean"][k] for k in kept}, {k: row["ci95"][k] for k in kept}
    path = tmp_path / "old.json"
    path.write_text(dumps(old))
    migrated = load_leaderboard(path)
    # The same entries as a leaderboard/3 file upgrade to the same leaderboard/4 entries.
    (tmp_path / "previous.json").write_text(dumps(current))
    previous = load_leaderboard(tmp_path / "previous.json")
    assert migrated["schema"] == previous["schema"] == "benchbias.leaderboard/4" and migrated["entries"] == previous["entries"]
    today = previous
    migrated_names, current_names = [s["name"] for s in migrated["score_table"]], [s["name"] for s in today["score_table"]]
    assert {"changed", "sensitivity", "hallucination", "erasure", "flip_rate", "mae"} <= set(migrated_names) <= set(current_names)

    old["entries"][0]["summary"]["mean_mae"] *= 0.5  # a hand edit in the old file
    path.write_text(dumps(old))
    with pytest.raises(InvalidFile, match=r"entries\[0\]\.summary\.mae: .* does not match"):
        load_leaderboard(path)


def test_a_re_derived_tolerance_keeps_older_files_comparable():
    from dataclasses import replace

    from benchbias.scoring.builtin import default_table

    old = ScoreTable(replace(s, tolerance=0.05) if s.name == "changed" else s for s in default_table())
    merged = old.merged(default_table())
    assert merged["changed"].tolerance == 0.05, "the first declaration's (the leaderboard's) tolerance stands"
    with pytest.raises(ValueError, match="declared twice, differently"):
        old.merged(ScoreTable(replace(s, better="higher") if s.name == "changed" else s for s in default_table()))
