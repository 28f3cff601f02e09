"""The command line, end to end, as subprocesses."""

import json

import pytest
from support import REPO, run_cli


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    cache = tmp_path_factory.getbasetemp() / "benchbias-cache"
    boards = tmp_path_factory.mktemp("boards")
    env = {"BENCHBIAS_CACHE": str(cache), "BENCHBIAS_LEADERBOARDS": str(boards)}
    result = run_cli("run", "synthetic-smoke", "--out", str(out), "--no-progress", "--submit", cwd=tmp_path_factory.mktemp("cwd"), env=env)
    return out, boards, env, result


@pytest.mark.slow
def test_smoke_run_writes_results_and_leaderboard(smoke_run):
    out, boards, _, result = smoke_run
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "benchbias.results/5"
    assert results["benchmark"]["name"] == "synthetic-smoke"
    assert len(results["benchmark"]["config_hash"]) == 64
    fractions = results["benchmark"]["config"]["domains"]["target_fractions"]
    cells = results["methods"]["l1"]["cells"]
    assert [c["ratio"] for c in cells] == fractions
    for cell in cells:
        scores = cell["scores"]
        for rate in ("tumor_called", "tumor_called_healthy_inputs", "tumor_called_tumor_inputs", "added", "removed", "flip_rate"):
            assert 0.0 <= scores[rate] <= 1.0
        assert scores["n_healthy_inputs"] == scores["n_tumor_inputs"] == 8  # balanced holdout of 16
        assert 0.0 < scores["mae"] < 1.0
    summary = results["methods"]["l1"]["summary"]
    assert set(summary["overall"]) == {"slope", "intercept", "slope_p", "spearman_rho", "spearman_p"}
    prov = results["provenance"]
    assert prov["packages"]["torch"] and prov["packages"]["monai"] and prov["device"].startswith("cpu")
    assert prov["wall_time_s"] > 0 and prov["seeds"] == [0]
    assert 0.0 <= results["classifier"]["holdout_accuracy"] <= 1.0
    board = json.loads((boards / "synthetic-smoke.json").read_text())
    assert sorted(e["method"] for e in board["entries"]) == sorted(results["methods"])
    rendered = (boards / "synthetic-smoke.md").read_text()
    assert all(f"| {name} |" in rendered for name in results["methods"]) and "| 1 |" in rendered
    assert "tumor-called (healthy in)" in result.stdout  # per-ratio table printed
    for name in ("figure2.png", "figure3.png", "report.html"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.slow
def test_rerun_resumes_every_finished_cell(smoke_run):
    out, _, env, first = smoke_run
    assert first.returncode == 0, first.stderr
    before = json.loads((out / "results.json").read_text())
    again = run_cli("run", "synthetic-smoke", "--out", str(out), "--no-progress", env=env)
    assert again.returncode == 0, again.stderr
    after = json.loads((out / "results.json").read_text())
    assert after["provenance"]["cells_run"] == 0
    assert after["provenance"]["cells_reused"] == sum(len(m["cells"]) for m in before["methods"].values())
    assert after["methods"] == before["methods"]


@pytest.mark.slow
def test_leaderboard_show(smoke_run):
    _, boards, env, result = smoke_run
    assert result.returncode == 0, result.stderr
    shown = run_cli("leaderboard", "show", "synthetic-smoke", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    ranked = [line.split()[1] for line in lines[header + 1 :] if line.strip()]
    board = json.loads((boards / "synthetic-smoke.json").read_text())
    assert sorted(ranked) == sorted(e["method"] for e in board["entries"]) and lines[header + 1].startswith("1 ")
    markdown = run_cli("leaderboard", "show", "synthetic-smoke", "--markdown", env=env)
    assert markdown.stdout == (boards / "synthetic-smoke.md").read_text()
    missing = run_cli("leaderboard", "show", "no-such-benchmark", env=env)
    assert missing.returncode == 2 and "no leaderboard" in missing.stderr


@pytest.mark.slow
def test_plugins_lists_baselines_with_origin_and_pairing(tmp_path):
    result = run_cli("plugins", cwd=tmp_path)  # from an unrelated working directory
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("l1 "))
    assert "paired" in line and "file benchbias_plugins/l1.py (benchbias " in line
    cyclegan = next(x for x in result.stdout.splitlines() if x.strip().startswith("cyclegan "))
    assert "unpaired" in cyclegan
    assert "impartial-cnn" in result.stdout and "brats2018" in result.stdout


@pytest.mark.slow
def test_bad_benchmark_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text().replace("target_fractions: [0.0, 0.5, 1.0]", "target_fractions: [0.0, 1.5]"))
    result = run_cli("run", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"benchbias: error: {bad}: domains.target_fractions[1]: must be a fraction in [0, 1], got 1.5"
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_unknown_benchmark_and_method(tmp_path):
    result = run_cli("run", "no-such-benchmark", cwd=tmp_path)
    assert result.returncode == 2 and "benchmark 'no-such-benchmark' not found" in result.stderr
    result = run_cli("run", "synthetic-smoke", "--methods", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "--methods: nope not in" in result.stderr


@pytest.mark.slow
def test_domain_larger_than_available_slices(tmp_path):
    bad = tmp_path / "greedy.yaml"
    text = (REPO / "benchmarks" / "synthetic-smoke.yaml").read_text()
    bad.write_text(text.replace("target_size: 24", "target_size: 5000"))
    result = run_cli("run", str(bad), "--out", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.startswith("benchbias: error: domains.target_size: at target fraction 0.0 the protocol needs 12 tumor + 5012 healthy")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "results.json").exists()


def test_data_synth_writes_brats_layout(tmp_path):
    result = run_cli("data", "synth", str(tmp_path / "synth"), "--subjects", "2", "--seed", "3", "--shape", "32", "32", "20")
    assert result.returncode == 0, result.stderr
    case = tmp_path / "synth" / "BraTS_Synth_000"
    assert sorted(p.name for p in case.iterdir()) == [f"BraTS_Synth_000_{m}.nii.gz" for m in ("flair", "seg", "t1")]
