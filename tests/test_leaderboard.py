"""Leaderboards, submissions, compare and check, through the CLI on a real two-seed smoke run."""

import copy
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from support import run_cli

from benchbias.foundation.config import protocol_of, stable_hash
from benchbias.foundation.jsonio import read_json, write_atomically
from benchbias.foundation.scoretable import ScoreTable
from benchbias.records.schemas import SCHEMAS
from benchbias.records.validation import InvalidFile, load_leaderboard, load_results
from benchbias.scoring.summary import method_summary, per_fraction, rank, reference_methods


@pytest.fixture(scope="module")
def two_seed_results(tmp_path_factory):
    """The smoke benchmark with two translator seeds (``--seeds``; the protocol stays the same)."""
    out = tmp_path_factory.mktemp("two-seeds") / "run"
    env = {"BENCHBIAS_CACHE": str(tmp_path_factory.getbasetemp() / "benchbias-cache")}
    result = run_cli("run", "synthetic-smoke", "--seeds", "0", "1", "--methods", "l1", "pix2pix", "--out", str(out), "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    return out / "results.json"


@pytest.fixture
def results(two_seed_results):
    return json.loads(two_seed_results.read_text())


@pytest.fixture
def boards(tmp_path):
    return {"BENCHBIAS_LEADERBOARDS": str(tmp_path / "boards")}


def write(tmp_path, data, name="results.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def rescore(data):
    """Recompute what the runner derives from the cells (after a test changed some cells)."""
    table = ScoreTable.from_json(data["score_table"])
    for method in data["methods"].values():
        method["summary"] = method_summary(method["cells"], table)
        method["per_fraction"] = per_fraction(method["cells"], table)
    references = reference_methods(data["methods"])
    data["ranking"] = rank({name: m["summary"] for name, m in data["methods"].items()}, references=references)
    if "ranking_2" in data:
        data["ranking_2"] = rank({name: m["summary"] for name, m in data["methods"].items()}, "_2", references)
    return data


def board_files(env):
    """Every file in the leaderboard folder, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(env["BENCHBIAS_LEADERBOARDS"]).glob("*"))}


def one_line_error(result, *needles):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# ---- submit --------------------------------------------------------------------------------


@pytest.mark.slow
def test_submit_accepts_and_writes_a_self_describing_entry(two_seed_results, boards):
    result = run_cli("leaderboard", "submit", str(two_seed_results), env=boards)
    assert result.returncode == 0, result.stderr
    assert "added l1 (benchbias " in result.stdout and "added pix2pix" in result.stdout
    path = Path(boards["BENCHBIAS_LEADERBOARDS"]) / "synthetic-smoke.json"
    board = load_leaderboard(path)
    assert board["schema"] == "benchbias.leaderboard/4" and board["target_fractions"] == [0.0, 0.5, 1.0]
    entry = next(e for e in board["entries"] if e["method"] == "l1")
    assert entry["origin"]["distribution"] == "benchbias" and len(entry["origin"]["sha256"]) == 64
    assert entry["params"]["filters"] == 8 and entry["seeds"] == [0, 1]
    assert {(c["ratio"], c["seed"]) for c in entry["cells"]} == {(r, s) for r in (0.0, 0.5, 1.0) for s in (0, 1)}
    results_cells = read_json(two_seed_results)["methods"]["l1"]["cells"]
    assert all(c["ci95"] for c in results_cells) and not any("ci95" in c for c in entry["cells"]), "cell intervals stay in results.json"
    assert [c["scores"] for c in entry["cells"]] == [c["scores"] for c in results_cells]
    assert re.search(r'"mae": \[[-+.e0-9]+, [-+.e0-9]+\]', path.read_text()), "short arrays (intervals) are written on one line"
    assert entry["summary"]["n_seeds"] == 2 and all(entry["summary"]["ci95"][k] is not None for k in ("changed", "sensitivity", "mae"))
    low, high = entry["summary"]["ci95"]["mae"]
    assert low <= entry["summary"]["mae"] <= high
    assert entry["packages"]["torch"] and entry["device"].startswith("cpu") and entry["wall_time_s"] > 0
    assert entry["classifier"]["holdout_accuracy"] >= 0 and entry["submitted"] >= entry["run_finished"][:10]
    assert path.with_suffix(".png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    markdown = path.with_suffix(".md").read_text()
    assert "![" in markdown and "(synthetic-smoke.png)" in markdown
    assert "do not edit by hand" in markdown and "95% t-intervals of its per-seed values" in markdown
    assert f"{entry['summary']['mae']:.4f} [{low:.4f}, {high:.4f}]" in markdown, "MAE shown with its interval"
    assert markdown.count("| l1 |") == 9, "ranked table, more scores and seven per-fraction tables (two of the segmentation judge)"


@pytest.mark.slow
def test_concurrent_submits_of_different_methods_all_land(two_seed_results, boards, tmp_path):
    """Each submit is a read-modify-write of the same file: without a lock the last writer wins."""
    import os
    import shutil
    import subprocess

    exe = shutil.which("benchbias")
    env = {**os.environ, **boards}
    results = json.loads(two_seed_results.read_text())
    files = []
    for i, version in enumerate(("9.1", "9.2", "9.3")):  # three versions of l1, plus pix2pix
        variant = copy.deepcopy(results)
        variant["methods"]["l1"]["version"] = f"benchbias {version}"
        files.append(write(tmp_path, variant, f"r{i}.json"))
    commands = [[exe, "leaderboard", "submit", str(f), "--methods", "l1"] for f in files]
    commands.append([exe, "leaderboard", "submit", str(two_seed_results), "--methods", "pix2pix"])
    processes = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    board = load_leaderboard(Path(boards["BENCHBIAS_LEADERBOARDS"]) / "synthetic-smoke.json")
    assert sorted((e["method"], e["version"]) for e in board["entries"]) == sorted(
        [("l1", "benchbias 9.1"), ("l1", "benchbias 9.2"), ("l1", "benchbias 9.3"), ("pix2pix", results["methods"]["pix2pix"]["version"])]
    )


@pytest.mark.slow
def test_duplicate_method_version_is_refused_unless_replace(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    mine = write(tmp_path, as_outside_method(copy.deepcopy(results)), "mine.json")
    assert run_cli("leaderboard", "submit", str(mine), env=boards).returncode == 0
    before = board_files(boards)
    again = run_cli("leaderboard", "submit", str(mine), env=boards)
    one_line_error(again, "methods.mine", "'mine' version 'mine-dist 1.0'", "already on the synthetic-smoke leaderboard", "--replace")
    assert board_files(boards) == before, "a refused submission leaves both files untouched"
    replaced = run_cli("leaderboard", "submit", str(mine), "--replace", env=boards)
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced mine" in replaced.stdout
    board = json.loads(before["synthetic-smoke.json"])
    new = load_leaderboard(Path(boards["BENCHBIAS_LEADERBOARDS"]) / "synthetic-smoke.json")
    assert sorted(e["method"] for e in new["entries"]) == sorted(e["method"] for e in board["entries"])


@pytest.mark.slow
def test_new_version_of_a_method_is_a_new_entry(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    results["methods"]["l1"]["version"] = "benchbias 9.9"
    added = run_cli("leaderboard", "submit", str(write(tmp_path, results, "v2.json")), "--methods", "l1", env=boards)
    assert added.returncode == 0, added.stderr
    board = json.loads((tmp_path / "boards" / "synthetic-smoke.json").read_text())
    assert sorted(e["version"] for e in board["entries"] if e["method"] == "l1") == sorted([results["methods"]["pix2pix"]["version"], "benchbias 9.9"])


def changed_protocol(data):
    """``data`` as if run under a larger holdout set, consistent with itself (hash recomputed)."""
    data["benchmark"]["config"]["domains"]["holdout_size"] += 2
    data["benchmark"]["protocol_hash"] = stable_hash(protocol_of(data["benchmark"]["config"]))
    return data


@pytest.mark.slow
def test_submission_under_another_protocol_or_data_set_is_refused(tmp_path, results, boards):
    # A benchmark without a file here, so that the leaderboard's own protocol is what refuses.
    results["benchmark"]["name"] = results["benchmark"]["config"]["name"] = "private-benchmark"
    results["benchmark"]["protocol_hash"] = stable_hash(protocol_of(results["benchmark"]["config"]))
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    before = board_files(boards)
    other = changed_protocol(copy.deepcopy(results))
    one_line_error(
        run_cli("leaderboard", "submit", str(write(tmp_path, other, "p.json")), "--replace", env=boards), "protocol_hash", "differs from the leaderboard's"
    )
    other = copy.deepcopy(results)
    other["dataset"]["fingerprint"] = "0" * 16
    one_line_error(run_cli("leaderboard", "submit", str(write(tmp_path, other, "d.json")), "--replace", env=boards), "dataset_fingerprint", "differs")
    assert board_files(boards) == before


@pytest.mark.slow
def test_submission_must_match_the_committed_benchmark_file(tmp_path, results, boards):
    # A consistent results file (hash recomputed) of a protocol the benchmark file does not have.
    result = run_cli("leaderboard", "submit", str(write(tmp_path, changed_protocol(results))), env=boards)
    one_line_error(result, "benchmark.protocol_hash", "of the benchmark file 'synthetic-smoke'")
    assert not (tmp_path / "boards").exists()


@pytest.mark.slow
def test_seeds_are_replicates_of_one_protocol(two_seed_results, tmp_path):
    """A run of seed 1 alone has the two-seed run's protocol hash, classifier and seed-1 cells."""
    two = json.loads(two_seed_results.read_text())
    result = run_cli("run", "synthetic-smoke", "--seeds", "1", "--methods", "l1", "--out", str(tmp_path / "one"), "--no-progress")
    assert result.returncode == 0, result.stderr
    one = load_results(tmp_path / "one" / "results.json")
    assert one["benchmark"]["protocol_hash"] == two["benchmark"]["protocol_hash"]
    assert one["provenance"]["seeds"] == [1] and two["provenance"]["seeds"] == [0, 1]
    assert one["classifier"]["holdout_accuracy"] == two["classifier"]["holdout_accuracy"]
    seed_one = [c["scores"] for c in two["methods"]["l1"]["cells"] if c["seed"] == 1]
    assert [c["scores"] for c in one["methods"]["l1"]["cells"]] == seed_one
    bad = run_cli("run", "synthetic-smoke", "--seeds", "1", "1", "--out", str(tmp_path / "bad"))
    one_line_error(bad, "--seeds 1 1: must be distinct")


# ---- malformed results -------------------------------------------------------------------


def _delete_score(d):
    del d["methods"]["l1"]["cells"][1]["scores"]["mae"]


def _string_score(d):
    d["methods"]["l1"]["cells"][0]["scores"]["flip_rate"] = "0.25"


def _rate_above_one(d):
    d["methods"]["pix2pix"]["cells"][2]["scores"]["tumor_called"] = 1.5


def _negative_rate(d):
    d["classifier"]["holdout_accuracy"] = -0.1


def _edited_summary(d):
    d["methods"]["l1"]["summary"]["mae"] *= 0.5


def _dropped_cell(d):
    d["methods"]["l1"]["cells"].pop()


def _edited_protocol(d):
    d["benchmark"]["config"]["domains"]["holdout_size"] = 1000


def _wrong_schema(d):
    d["schema"] = "benchbias.results/1"


MALFORMED = {
    "missing score": (_delete_score, "methods.l1.cells[1].scores.mae: is missing"),
    "wrong type": (_string_score, "methods.l1.cells[0].scores.flip_rate: '0.25' is not of type 'number'"),
    "rate above 1": (_rate_above_one, "methods.pix2pix.cells[2].scores.tumor_called: 1.5 is greater than the maximum of 1"),
    "rate below 0": (_negative_rate, "classifier.holdout_accuracy: -0.1 is less than the minimum of 0"),
    "summary edited": (_edited_summary, "methods.l1.summary.mae:"),
    "cell dropped": (_dropped_cell, "methods.l1.cells: missing (ratio, seed) [(1.0, 1)]"),
    "protocol edited": (_edited_protocol, "benchmark.protocol_hash: does not match the protocol"),
    "old schema": (_wrong_schema, "schema: is 'benchbias.results/1'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_results_are_rejected_naming_the_field(case, tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results, "good.json")), env=boards).returncode == 0
    before = board_files(boards)
    edit, message = MALFORMED[case]
    edit(results)
    bad = write(tmp_path, results)
    result = run_cli("leaderboard", "submit", str(bad), "--replace", env=boards)
    one_line_error(result, str(bad), message)
    assert board_files(boards) == before
    with pytest.raises(InvalidFile):
        load_results(bad)


@pytest.mark.slow
def test_nan_is_rejected_naming_the_field(tmp_path, results, boards):
    text = json.dumps(results).replace(json.dumps(results["methods"]["l1"]["summary"]["flip_rate"]), "NaN", 1)
    bad = tmp_path / "nan.json"
    bad.write_text(text)
    assert "NaN" in text
    one_line_error(run_cli("leaderboard", "submit", str(bad), env=boards), "NaN is not a finite number")
    assert not (tmp_path / "boards").exists()
    bad.write_text("{not json")
    one_line_error(run_cli("check", str(bad), "--against", str(bad)), "is not valid JSON")


@pytest.mark.slow
def test_hand_edited_leaderboard_is_rejected_on_read(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    path = tmp_path / "boards" / "synthetic-smoke.json"
    board = json.loads(path.read_text())
    board["entries"][0]["summary"]["changed"] = 0.0 if board["entries"][0]["summary"]["changed"] else 0.5
    path.write_text(json.dumps(board))
    one_line_error(run_cli("leaderboard", "show", str(path)), "entries[0].summary.changed", "computed from the cells")
    one_line_error(run_cli("leaderboard", "submit", str(write(tmp_path, results, "r2.json")), "--replace", env=boards), "entries[0].summary.changed")


@pytest.mark.slow
def test_markdown_edited_by_hand_fails_validation_and_render_restores_it(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    md = tmp_path / "boards" / "synthetic-smoke.md"
    original = md.read_text()
    assert run_cli("leaderboard", "validate", env=boards).returncode == 0
    md.write_text(original.replace("| 1 |", "| 0 |"))
    one_line_error(run_cli("leaderboard", "validate", env=boards), "is not the rendering of synthetic-smoke.json")
    assert run_cli("leaderboard", "render", "synthetic-smoke", env=boards).returncode == 0
    assert md.read_text() == original
    (tmp_path / "boards" / "synthetic-smoke.png").unlink()
    one_line_error(run_cli("leaderboard", "validate", env=boards), "synthetic-smoke.png", "is missing")


# ---- atomic rewrite ------------------------------------------------------------------------


def test_a_failure_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "board.json"
    path.write_text('{"old": true}\n')

    def half_then_fail(handle):
        handle.write(b'{"new": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_text() == '{"old": true}\n'
    assert list(tmp_path.iterdir()) == [path], "no temporary file left behind"


@pytest.mark.slow
def test_submit_failing_before_the_rename_leaves_both_files(tmp_path, results, monkeypatch):
    from benchbias.leaderboard import board as leaderboard

    folder = tmp_path / "boards"
    leaderboard.submit(load_results(write(tmp_path, results)), folder=folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(path, write):
        with open(path.with_name(f".{path.name}.partial"), "wb") as handle:
            write(handle)
        raise OSError("disk full")

    monkeypatch.setattr(leaderboard, "write_atomically", broken)
    monkeypatch.setattr(leaderboard, "check_replace", lambda *args: None)  # so that --replace may take the shipped l1
    with pytest.raises(OSError):
        leaderboard.submit(load_results(write(tmp_path, results)), folder=folder, replace=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.endswith(".partial")} == before


# ---- compare and check ---------------------------------------------------------------------


def worse_results(results, method="l1", mae_factor=1.0):
    """Valid results in which ``method`` hallucinates: its tumor-called rate on healthy inputs and its
    hallucination rate equal the target tumor fraction (slope 1); its pixel errors are scaled by
    ``mae_factor``."""
    data = copy.deepcopy(results)
    for cell in data["methods"][method]["cells"]:
        cell["scores"]["tumor_called_healthy_inputs"] = cell["ratio"]
        cell["scores"]["hallucination"] = cell["ratio"]
        cell["scores"]["mae"] = min(1.0, cell["scores"]["mae"] * mae_factor)
    return rescore(data)


@pytest.mark.slow
def test_check_passes_against_its_own_submission(tmp_path, two_seed_results, boards):
    result = run_cli("check", str(two_seed_results), "--against", str(two_seed_results))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout and "WORSE" not in result.stdout
    assert result.stdout.count(" ok") >= 12, "six sweep scores for each of two methods, and the per-fraction and per-judge ones"


@pytest.mark.slow
def test_check_fails_on_a_worse_score_and_honours_tolerances(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    board = str(tmp_path / "boards" / "synthetic-smoke.json")
    worse = write(tmp_path, worse_results(results, mae_factor=1.5), "worse.json")
    failed = run_cli("check", str(worse), "--against", board)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "check FAILED" in failed.stdout and "l1 sensitivity" in failed.stdout and "l1 mae" in failed.stdout
    rows = [line for line in failed.stdout.splitlines() if "WORSE" in line]
    assert any("composition sensitivity" in row for row in rows) and any("MAE" in row for row in rows)
    assert not any("pix2pix" in row for row in rows) and not any("flip rate" in row for row in rows)

    # Slope 1 against about 0, MAE up 50% (beyond the two-seed interval): tolerances above those
    # pass, and each one counts alone.
    loose = ["--tolerance", "sensitivity=1.5", "--tolerance", "dependence_hallucination=1.5", "--tolerance", "hallucination=1", "--tolerance", "changed=1"]
    loose += ["--tolerance", "mae=60%", "--tolerance", "hallucination_at_fraction=1"]
    passed = run_cli("check", str(worse), "--against", board, *loose)
    assert passed.returncode == 0, passed.stdout
    tight_mae = run_cli("check", str(worse), "--against", board, *loose, "--tolerance", "mae=20%")
    assert tight_mae.returncode == 1 and "l1 mae" in tight_mae.stdout and "sensitivity" not in tight_mae.stdout.split("FAILED")[1]
    only_other = run_cli("check", str(worse), "--against", board, "--method", "pix2pix")
    assert only_other.returncode == 0 and "l1 (" not in only_other.stdout
    one_line_error(run_cli("check", str(worse), "--against", board, "--tolerance", "speed=1"), "unknown score 'speed'")
    one_line_error(run_cli("check", str(worse), "--against", board, "--method", "cyclegan"), "method 'cyclegan' is not in")


@pytest.mark.slow
def test_check_refuses_another_protocol(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    other = write(tmp_path, changed_protocol(copy.deepcopy(results)), "other.json")
    one_line_error(run_cli("check", str(other), "--against", str(tmp_path / "boards" / "synthetic-smoke.json")), "cannot be checked", "protocol_hash")


@pytest.mark.slow
def test_compare_prints_per_fraction_and_summary_differences(tmp_path, results):
    a = write(tmp_path, results, "a.json")
    worse = worse_results(results)
    b = write(tmp_path, worse, "b.json")
    result = run_cli("compare", str(a), str(b))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== l1:" in out and "== pix2pix:" in out
    l1 = out[out.index("== l1:") : out.index("== pix2pix:")]
    for row in results["methods"]["l1"]["per_fraction"]:  # healthy-input rates went to the fraction
        line = next(line for line in l1.splitlines() if line.startswith(f"{row['ratio']:g} "))
        before = row["mean"]["tumor_called_healthy_inputs"]
        assert line.split()[1:4] == [f"{before:.2f}", f"{row['ratio']:.2f}", f"{row['ratio'] - before:+.2f}"], line
    assert "composition sensitivity" in l1 and "B - A" in l1


def test_schema_command_prints_valid_json_schemas():
    for kind in ("results", "leaderboard"):
        result = run_cli("schema", kind)
        assert result.returncode == 0
        schema = json.loads(result.stdout)
        Draft202012Validator.check_schema(schema)
        assert schema == json.loads(json.dumps(SCHEMAS[kind]))


def summary_of(maes_by_seed, first_seed=0):
    """A method summary from synthetic cells: no bias, the given per-seed pixel errors."""
    cells = [
        {
            "ratio": r,
            "seed": seed,
            "scores": {
                "tumor_called": 0.5,
                "tumor_called_healthy_inputs": 0.1,
                "tumor_called_tumor_inputs": 0.9,
                "hallucination": 0.1,
                "erasure": 0.1,
                "flip_rate": 0.1,
                "mae": mae,
            },
        }
        for seed, mae in enumerate(maes_by_seed, start=first_seed)
        for r in (0.0, 0.5, 1.0)
    ]
    from benchbias.scoring.builtin import default_table

    return method_summary(cells, default_table())


def test_check_allows_the_reference_seed_spread_but_not_more():
    from benchbias.leaderboard.compare import Scored, check, parse_tolerances
    from benchbias.scoring.builtin import default_table

    def scored(summary):
        return Scored(Path("x.json"), "results", "b", "h" * 64, "d", "j" * 64, {"m": [{"version": "v", "summary": summary}]}, default_table())

    defaults = parse_tolerances([], default_table())
    reference = scored(summary_of([0.040, 0.050, 0.060]))  # seeds 0-2: mean 0.05, 95% CI [0.025, 0.075]
    assert reference.methods["m"][0]["summary"]["ci95"]["mae"] == pytest.approx([0.02516, 0.07484], abs=1e-4)
    within = check(scored(summary_of([0.07], first_seed=10)), reference, defaults)
    assert within.passed, "0.07 is inside the reference's interval although 0.02 above its mean"
    assert any("(95% CI)" in row[5] for row in within.rows)
    assert check(scored(summary_of([0.08], first_seed=10)), reference, defaults).worse == ["m mae"]

    # Seed 2 alone is compared with the reference's seed 2 (0.06), not with the mean of three.
    matched = check(scored(summary_of([0.06], first_seed=2)), reference, defaults)
    assert matched.passed and "seeds 2 matched" in matched.rows[1][0]
    mae_row = next(row for row in matched.rows if row[1] == "MAE")
    assert mae_row[2:5] == ["0.0600", "0.0600", "+0.0000"]

    single = scored(summary_of([0.05]))  # one seed: only the tolerance (0.0019) applies
    assert check(scored(summary_of([0.0518], first_seed=10)), single, defaults).passed
    assert check(scored(summary_of([0.0520], first_seed=10)), single, defaults).worse == ["m mae"]


# ---- the board's identity: its judges, seeds, steps, and what --replace may overwrite ----------------


def as_outside_method(data, name="mine"):
    """``data`` with l1's cells under another method name, from another distribution (an outside submission)."""
    method = copy.deepcopy(data["methods"]["l1"])
    method["plugin"], method["version"] = name, f"{name}-dist 1.0"
    method["origin"] = {**method["origin"], "distribution": f"{name}-dist", "version": "1.0"}
    data["methods"] = {name: method}
    return rescore(data)


def only_seed(data, seed):
    for method in data["methods"].values():
        method["cells"] = [c for c in method["cells"] if c["seed"] == seed]
    data["provenance"]["seeds"] = [seed]
    return rescore(data)


@pytest.mark.slow
def test_the_board_takes_every_judge_the_baselines_seeds_and_the_committed_steps(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0  # l1 and pix2pix, seeds 0 and 1
    before = board_files(boards)
    # The best seed alone: refused, whichever it is.
    one = only_seed(as_outside_method(copy.deepcopy(results)), 1)
    one_line_error(run_cli("leaderboard", "submit", str(write(tmp_path, one, "one.json")), env=boards), "provenance.seeds: [1]", "exactly seeds [0, 1]")
    # Without the extra judges the board records (a copy of the benchmark file without them).
    blind = as_outside_method(copy.deepcopy(results))
    del blind["extra_judges"]
    one_line_error(run_cli("leaderboard", "submit", str(write(tmp_path, blind, "blind.json")), env=boards), "extra_judges.", "records a")
    # Fewer steps than the benchmark file trains for.
    short = as_outside_method(copy.deepcopy(results))
    short["methods"]["mine"]["steps"] = 5
    one_line_error(run_cli("leaderboard", "submit", str(write(tmp_path, short, "short.json")), env=boards), "methods.mine.steps: 5", "trains it for")
    assert board_files(boards) == before
    # All seeds, every judge, the committed steps: accepted.
    fair = as_outside_method(copy.deepcopy(results))
    assert run_cli("leaderboard", "submit", str(write(tmp_path, fair, "fair.json")), env=boards).returncode == 0


@pytest.mark.slow
def test_replace_takes_the_same_code_only_and_never_a_shipped_baseline(tmp_path, results, boards):
    assert run_cli("leaderboard", "submit", str(write(tmp_path, results)), env=boards).returncode == 0
    mine = as_outside_method(copy.deepcopy(results))
    assert run_cli("leaderboard", "submit", str(write(tmp_path, mine, "mine.json")), env=boards).returncode == 0
    baseline = run_cli("leaderboard", "submit", str(write(tmp_path, results)), "--replace", "--methods", "l1", env=boards)
    one_line_error(baseline, "methods.l1", "shipped with benchbias", "not replaced")
    other_code = copy.deepcopy(mine)
    other_code["methods"]["mine"]["origin"]["sha256"] = "0" * 64
    one_line_error(run_cli("leaderboard", "submit", str(write(tmp_path, other_code, "o.json")), "--replace", env=boards), "origin.sha256", "same code only")
    rerun = run_cli("leaderboard", "submit", str(write(tmp_path, mine, "mine.json")), "--replace", env=boards)
    assert rerun.returncode == 0 and "replaced mine" in rerun.stdout, rerun.stderr


def test_the_checkout_s_leaderboards_are_found_from_any_working_directory(tmp_path, monkeypatch):
    from support import REPO

    from benchbias.leaderboard import leaderboard_dir

    monkeypatch.delenv("BENCHBIAS_LEADERBOARDS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert leaderboard_dir() == REPO / "leaderboards"


def test_a_reference_board_without_baselines_takes_the_committed_board_s_seeds():
    """A plugin's own reference board (``BENCHBIAS_LEADERBOARDS=reference``) has no baselines: its
    entries take the seeds of the baselines on benchbias's committed board of the benchmark, as the
    public board would, not the default run's single seed; without a committed board, the file's."""
    from benchbias.leaderboard.board import board_seeds

    quick = {"benchmark": {"name": "synthetic-quick"}, "methods": {}, "provenance": {"seeds": [0]}}
    seeds, where = board_seeds(quick, None, [])
    assert seeds == [0, 1, 2] and "committed synthetic-quick leaderboard" in where
    smoke = {"benchmark": {"name": "synthetic-smoke"}, "methods": {}, "provenance": {"seeds": [3]}}
    assert board_seeds(smoke, None, []) == ([0], "the seeds of the benchmark file 'synthetic-smoke'")
