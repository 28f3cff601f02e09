"""The pinned judge: trained once, identified by the sha256 of its weights, refused when another judge
scored a submission; and robust to benign intensity changes."""

import json

import numpy as np
import pytest
import torch
import yaml
from support import REPO, run_cli

from benchbias.cli import main
from benchbias.foundation.jsonio import read_json
from benchbias.judges import pinned
from benchbias.judges.robustness import IntensityAugmentation, benign_perturbations, robustness_table


def one_line_error(result, *needles):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("benchbias: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """A copy of the smoke benchmark under another name, with its judge pinned by `judge train`."""
    folder = tmp_path_factory.mktemp("judged")
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["name"] = "judged"
    path = folder / "judged.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {"BENCHBIAS_CACHE": str(tmp_path_factory.getbasetemp() / "benchbias-cache")}
    trained = run_cli("judge", "train", str(path), "--no-progress", "--threads", "1", env=env)
    assert trained.returncode == 0, trained.stderr
    return path, env, trained


@pytest.mark.slow
def test_judge_train_pins_weights_with_their_sha256(judged):
    path, env, trained = judged
    files = pinned.JudgeFiles.beside(path, "judged")
    info = read_json(files.info)
    assert info["sha256"] == pinned.sha256_of(files.weights) and len(info["sha256"]) == 64
    assert info["protocol_hash"] and info["dataset_fingerprint"] and info["trained_with"]["threads"] == 1
    assert f"judge impartial-cnn sha256 {info['sha256']}" in trained.stdout
    assert "no such judge was pinned for this benchmark before" in trained.stdout
    # The benchmark's extra judges are pinned beside it too (synthetic-smoke has both).
    for role in ("segmenter", "second-judge"):
        extra = pinned.JudgeFiles.beside(path, f"judged-{role}")
        assert read_json(extra.info)["sha256"] == pinned.sha256_of(extra.weights)
    # The robustness table is printed and stored: every benign perturbation, both input classes.
    names = [row["perturbation"] for row in info["robustness"]["perturbed"]]
    assert names == [p.name for p in benign_perturbations()] and "intensity x0.9" in trained.stdout
    # Retraining on the same machine and thread count gives the same weights, and says so.
    again = run_cli("judge", "train", str(path), "--no-progress", "--threads", "1", env=env)
    assert again.returncode == 0 and "changed: weights identical (sha256 unchanged)" in again.stdout


@pytest.mark.slow
def test_runs_score_with_the_pinned_judge_and_record_it(judged, tmp_path):
    path, env, _ = judged
    info = read_json(pinned.JudgeFiles.beside(path, "judged").info)
    result = run_cli("run", str(path), "--methods", "l1", "--no-progress", "--out", str(tmp_path / "run"), env=env)
    assert result.returncode == 0, result.stderr
    results = read_json(tmp_path / "run" / "results.json")
    assert results["classifier"]["sha256"] == info["sha256"] and results["classifier"]["pinned"] is True
    assert results["classifier"]["robustness"] == info["robustness"]
    assert f"judge impartial-cnn {info['sha256'][:12]} (pinned)" in result.stdout
    assert "judge" in (tmp_path / "run" / "report.html").read_text()


@pytest.mark.slow
def test_replaced_or_foreign_weights_are_refused_in_one_line(judged, tmp_path):
    path, env, _ = judged
    copy = tmp_path / "judged.yaml"
    copy.write_text(path.read_text())
    (tmp_path / "judges").mkdir()
    files = pinned.JudgeFiles.beside(path, "judged")
    info = read_json(files.info)
    (tmp_path / "judges" / "judged.json").write_text(json.dumps(info))
    weights = bytearray(files.weights.read_bytes())
    weights[-40] ^= 0xFF
    (tmp_path / "judges" / "judged.pt").write_bytes(bytes(weights))
    out = ["--methods", "l1", "--no-progress", "--out", str(tmp_path / "run")]
    one_line_error(run_cli("run", str(copy), *out, env=env), "judged.pt: sha256", "recorded in judged.json")
    # Weights of another protocol: the record says which.
    (tmp_path / "judges" / "judged.pt").write_bytes(files.weights.read_bytes())
    (tmp_path / "judges" / "judged.json").write_text(json.dumps({**info, "protocol_hash": "0" * 64}))
    one_line_error(run_cli("run", str(copy), *out, env=env), "judged.json: protocol_hash", "benchbias judge train")


@pytest.mark.slow
def test_submit_and_check_refuse_results_of_another_judge(judged, tmp_path):
    path, env, _ = judged
    boards = {**env, "BENCHBIAS_LEADERBOARDS": str(tmp_path / "boards")}
    assert run_cli("run", str(path), "--methods", "l1", "--no-progress", "--out", str(tmp_path / "run"), env=env).returncode == 0
    results = read_json(tmp_path / "run" / "results.json")
    assert run_cli("leaderboard", "submit", str(tmp_path / "run" / "results.json"), env=boards).returncode == 0
    board = read_json(tmp_path / "boards" / "judged.json")
    assert board["judge_sha256"] == results["classifier"]["sha256"] == board["entries"][0]["classifier"]["sha256"]

    other = {**results, "classifier": {**results["classifier"], "sha256": "f" * 64}}
    (tmp_path / "other.json").write_text(json.dumps(other))
    one_line_error(
        run_cli("leaderboard", "submit", str(tmp_path / "other.json"), "--replace", env=boards),
        "classifier.sha256: judged by ffffffffffff",
        "another judge",
    )
    one_line_error(run_cli("check", str(tmp_path / "other.json"), "--against", str(tmp_path / "boards" / "judged.json")), "judge_sha256")


@pytest.mark.slow
def test_a_benchmark_without_a_pinned_judge_trains_one_into_the_cache_once(tmp_path):
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["name"] = "unpinned"
    path = tmp_path / "unpinned.yaml"
    path.write_text(yaml.safe_dump(raw))
    first = run_cli("run", str(path), "--methods", "l1", "--no-progress", "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert "judge: trained" in first.stderr and "benchbias judge train" in first.stderr
    second = run_cli("run", str(path), "--methods", "l1", "--no-progress", "--out", str(tmp_path / "b"))
    assert second.returncode == 0 and "judge: trained" not in second.stderr
    a, b = read_json(tmp_path / "a" / "results.json"), read_json(tmp_path / "b" / "results.json")
    assert a["classifier"]["sha256"] == b["classifier"]["sha256"] and a["classifier"]["pinned"] is False


def test_committed_judges_match_their_records_and_the_quick_judge_meets_the_standard():
    for name in ("synthetic-smoke", "synthetic-quick"):
        files = pinned.JudgeFiles.beside(REPO / "benchmarks" / f"{name}.yaml", name)
        info = read_json(files.info)
        assert pinned.sha256_of(files.weights) == info["sha256"]
        assert files.weights.stat().st_size < 1_000_000
    quick = read_json(pinned.JudgeFiles.beside(REPO / "benchmarks" / "synthetic-quick.yaml", "synthetic-quick").info)
    assert pinned.quality_problems(quick) == []
    assert quick["holdout_accuracy"] >= 0.93 and quick["robustness"]["max_shift"] <= 0.05


def test_augmentation_is_seeded_and_stays_in_range():
    images = torch.rand(10, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a, b = IntensityAugmentation(seed=3)(images), IntensityAugmentation(seed=3)(images)
    assert torch.equal(a, b) and a.shape == images.shape
    assert a.min() >= -1 and a.max() <= 1 and not torch.equal(a, images)


def test_robustness_table_flags_a_brightness_reader():
    """A 'judge' that thresholds mean brightness is what augmentation must prevent: the table catches it."""
    images = torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.2  # [0, 1] scale
    is_tumor = np.arange(40) % 2 == 1
    images[is_tumor] *= 0.8  # tumor slices are a little darker

    def brightness(batch):
        return (((batch + 1) / 2).mean(dim=(1, 2, 3)) < 0.38).float()

    table = robustness_table(brightness, images * 2 - 1, is_tumor)
    assert not table["robust"] and table["max_shift"] > 0.05
    assert table["unperturbed"] == {"healthy_inputs": 0.0, "tumor_inputs": 1.0}


def test_judge_stress_reads_the_pinned_judges_beyond_their_augmentation(tmp_path):
    """``benchbias judge stress``: each pinned classifier's rates under perturbations outside its
    training augmentation (intensity x0.6-x1.4 and more), on the real holdout of the benchmark."""
    result = run_cli("judge", "stress", "synthetic-smoke", env={"BENCHBIAS_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("judge impartial-cnn", "second judge timm-cnn", "intensity x0.6", "intensity x1.4", "gamma 1.6", "Gaussian noise sd 0.08"):
        assert line in result.stdout, line
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("intensity x1.4")]
    assert len(rows) == 2 and all(0.0 <= float(v) <= 1.0 for row in rows for v in row[2:]), rows
    # A judge attacked with its own weights makes the call the attacker wants on (nearly) every slice.
    attacked = next(line for line in result.stdout.splitlines() if line.startswith("with impartial-cnn's weights")).split()
    assert float(attacked[-2]) >= 0.95, attacked


def test_judge_stress_retrains_the_second_judge_with_a_recipe_and_attacks_at_each_budget(tmp_path):
    """``--second-judge-param`` trains the second judge here with params (and steps) over its recipe, in
    place of the pinned one; ``--attack-eps`` twice gives one attack table per budget."""
    result = run_cli(
        "judge", "stress", "synthetic-smoke", "--second-judge-param", "adversarial_eps=0.1", "--second-judge-param", "steps=10",
        "--attack-eps", "0.05", "--attack-eps", "0.25", "--threads", "1", "--no-progress", env={"BENCHBIAS_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "second judge timm-cnn (retrained)" in out and "trained 10 steps" in out and "'adversarial_eps': 0.1" in out
    assert "judge impartial-cnn " in out and "impartial-cnn (retrained)" not in out  # the first judge stays the pinned one
    tables = [line for line in out.splitlines() if line.startswith("gradient attack on the untranslated source")]
    assert len(tables) == 2 and "at most 0.05 per pixel" in tables[0] and "at most 0.25 per pixel" in tables[1], tables
    assert len([line for line in out.splitlines() if line.startswith("with timm-cnn (retrained)'s weights")]) == 2


def test_judge_stress_private_reads_the_attacked_private_holdout_with_the_private_judges(tmp_path):
    """``--private`` (maintainers): the attack on the public judges, at once too, made on the private
    holdout and read by the judges of ``leaderboard verify``, the hardened first one and its plain twin."""
    env = {"BENCHBIAS_CACHE": str(tmp_path / "cache"), "BENCHBIAS_HOLDOUT_SECRET": "a test secret, not the maintainers'"}
    result = run_cli("judge", "stress", "synthetic-smoke", "--private", "--threads", "1", "--no-progress", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    header = next(line for line in result.stdout.splitlines() if line.startswith("gradient attack on the private holdout's untranslated source"))
    for column in ("impartial-cnn: right calls", "private impartial-cnn (plain): right calls", "private impartial-cnn (hardened): right calls",
                   "private timm-cnn: right calls"):  # fmt: skip
        assert column in header, header
    rows = [line for line in result.stdout.splitlines() if line.startswith("with ")]
    assert [r.split("'s weights")[0] for r in rows] == ["with impartial-cnn", "with timm-cnn", "with all of impartial-cnn, timm-cnn"]
    assert all(0.0 <= float(v) <= 1.0 for r in rows for v in r.split("'s weights")[1].split()), rows
    assert (tmp_path / "cache" / "private").is_dir()  # the private judges are kept in the season's cache, as verify keeps them


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--second-judge-param", "adversarial_eps=-0.5", "--second-judge-param: timm-cnn: parameter 'adversarial_eps' must be >= 0.0, got -0.5"),
        ("--judge-param", "steps=0", "--judge-param: steps must be a positive integer, got 0"),
        ("--attack-eps", "3", "--attack-eps 3.0: must be in (0, 2] (a budget per pixel on [-1, 1])"),
        ("--private", None, "$BENCHBIAS_HOLDOUT_SECRET: set it to the maintainers' holdout secret (at least 16 characters)"),
    ],
)
def test_judge_stress_names_a_bad_recipe_in_one_line(capsys, monkeypatch, option, value, message):
    monkeypatch.delenv("BENCHBIAS_HOLDOUT_SECRET", raising=False)
    assert main(["judge", "stress", "synthetic-smoke", option, *([value] if value is not None else [])]) == 2
    assert capsys.readouterr().err.strip() == f"benchbias: error: {message}"


def test_stress_perturbations_reach_beyond_the_training_augmentation():
    from benchbias.judges.robustness import stress_perturbations

    unit = torch.full((2, 1, 8, 8), 0.5)
    by_name = {p.name: p for p in stress_perturbations()}
    assert torch.allclose(by_name["intensity x0.6"](unit), torch.full_like(unit, 0.3))
    assert torch.allclose(by_name["intensity x1.4"](unit), torch.full_like(unit, 0.7))
    assert {p.name for p in stress_perturbations()}.isdisjoint(p.name for p in benign_perturbations())


def test_repinning_the_first_judge_keeps_the_extra_judges_but_a_data_change_does_not():
    """An extra judge's record covers what its training reads: the data, split, slices and its own
    config, not the first judge's section (whose change must not force the extra judges to retrain)."""
    from dataclasses import replace

    from benchbias.foundation.benchmark_files import load_benchmark
    from benchbias.judges.panel import Judge

    bench = load_benchmark(REPO / "benchmarks" / "synthetic-quick.yaml")
    hardened = replace(bench, classifier=replace(bench.classifier, params={**bench.classifier.params, "adversarial_eps": 0.1}))
    other_split = replace(bench, split=replace(bench.split, seed=bench.split.seed + 1))
    first = Judge("classifier", bench.classifier, None, "code")
    assert first.trained_for(hardened) != first.trained_for(bench)
    for role, config in (("second_judge", bench.second_judge), ("segmenter", bench.segmenter)):
        extra = Judge(role, config, None, "code")
        assert extra.trained_for(hardened) == extra.trained_for(bench)
        assert extra.trained_for(other_split) != extra.trained_for(bench)
    for role in ("second_judge", "segmenter"):  # the committed records were made under this rule
        info = read_json(REPO / "benchmarks" / "judges" / f"synthetic-quick-{role.replace('_', '-')}.json")
        assert info["protocol_hash"] == Judge(role, getattr(bench, role), None, "code").trained_for(bench)
