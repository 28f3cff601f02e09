"""Options the paper benchmark needs, at tiny scale: non-square slices (``slices.image_size: [rows,
columns]``) and the translators' intensity range (``slices.network_max``); both leave the benchmarks
that do not use them, and their pinned judges, as they were."""
import numpy as np
import pytest
import torch
import yaml
from support import REPO, run_cli

from benchbias import judge
from benchbias.config import ConfigError, SliceConfig, parse_benchmark, slice_options
from benchbias.jsonio import read_json
from benchbias.plugins import load_registry
from benchbias.runner import from_network, to_network

SMOKE = REPO / "benchmarks" / "synthetic-smoke.yaml"
SYNTHETIC = ["synthetic-smoke", "synthetic-mini", "synthetic-quick"]


def smoke_raw():
    return yaml.safe_load(SMOKE.read_text())


def parse(**sections):
    raw = smoke_raw()
    for section, values in sections.items():
        raw[section].update(values)
    return parse_benchmark(raw, "bench.yaml")


# ---- configuration -----------------------------------------------------------------------------


def test_image_size_is_a_square_or_rows_by_columns():
    assert parse(slices={"image_size": [32, 16]}).slices.shape == (32, 16)
    assert parse(slices={"image_size": [32, 16]}).slices.image_size == (32, 16)
    square = parse(slices={"image_size": [32, 32]})
    assert square.slices.image_size == 32 and square.protocol_hash() == parse().protocol_hash()  # [n, n] is the int n


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("slices", "image_size", 30, "slices.image_size: must be divisible by 4 (two stride-2 stages), got 30"),
        ("slices", "image_size", [32, 18], "slices.image_size[1]: must be divisible by 4 (two stride-2 stages), got 18"),
        ("slices", "image_size", [32, 8], "slices.image_size[1]: must be >= 16, got 8"),
        ("slices", "image_size", [32], "slices.image_size: must be an integer (a square) or [rows, columns], got a list of 1"),
        ("slices", "image_size", "512x256", "slices.image_size: must be an integer (a square) or [rows, columns], got str '512x256'"),
        ("slices", "image_size", [32, "16"], "slices.image_size[1]: must be an integer, got str '16'"),
        ("slices", "network_max", 0, "slices.network_max: must be in (0, 1]"),
        ("slices", "network_max", 2.55, "slices.network_max: must be a fraction in [0, 1], got 2.55"),
    ],
)
def test_bad_values_are_one_line_naming_the_field(section, key, value, message):
    with pytest.raises(ConfigError) as err:
        parse(**{section: {key: value}})
    assert str(err.value).startswith(f"bench.yaml: {message}") and "\n" not in str(err.value)


def test_bad_image_size_stops_benchbias_run_with_one_line(tmp_path):
    raw = smoke_raw()
    raw["slices"]["image_size"] = [32, 18]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = run_cli("run", str(path), "--out", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.strip() == f"benchbias: error: {path}: slices.image_size[1]: must be divisible by 4 (two stride-2 stages), got 18"


def test_network_max_changes_the_protocol_but_not_the_prepared_slices():
    assert parse(slices={"network_max": 0.4}).protocol_hash() != parse().protocol_hash()
    assert slice_options(SliceConfig(network_max=0.4)) == slice_options(SliceConfig())  # cache key and data identity
    assert slice_options(SliceConfig(image_size=(32, 16))) != slice_options(SliceConfig())


# ---- the translators' range ---------------------------------------------------------------------


def test_network_range_maps_unit_slices_and_back_clamped():
    unit = np.linspace(0.0, 1.0, 11, dtype=np.float32).reshape(1, 1, 11)
    assert torch.equal(to_network(unit), torch.from_numpy(unit)[:, None] * 2.0 - 1.0)  # the default is today's mapping
    paper = to_network(unit, 100 / 255)
    assert paper.min() == -1.0 and paper.max() == pytest.approx(-1 + 200 / 255)  # [-1, -0.216]
    np.testing.assert_allclose(from_network(paper, 100 / 255)[:, 0].numpy(), unit, atol=1e-6)
    assert float(from_network(torch.tensor([0.5]), 100 / 255)) == 1.0  # brighter than the data: clamped


# ---- the judge ------------------------------------------------------------------------------------


def test_impartial_cnn_takes_rows_by_columns():
    cls = load_registry().get("classifier", "impartial-cnn").cls
    cnn = cls(channels=4, batch_size=4)
    cnn._build((32, 16))
    state = cnn.state_dict()
    assert state["image_size"].tolist() == [32, 16]
    again = cls(channels=4, batch_size=4)
    again.load_state_dict(state)
    assert again.predict_proba(torch.zeros(2, 1, 32, 16)).shape == (2,)
    cnn._build(32)
    assert cnn.state_dict()["image_size"].dim() == 0  # a square stays one number, as in the pinned judges


@pytest.mark.parametrize("name", SYNTHETIC)
def test_committed_judges_load_with_the_current_classifier_code(name):
    files = judge.JudgeFiles.beside(REPO / "benchmarks" / f"{name}.yaml", name)
    info = read_json(files.info)
    entry = load_registry().get("classifier", info["name"])
    classifier = entry.cls(**info["params"]) if set(info["params"]) <= set(entry.cls.params) else entry.cls()
    same = tuple(getattr(entry.cls, "same_results_as", ()))
    loaded = judge.load(files, classifier, info["protocol_hash"], info["dataset_fingerprint"], entry.code_sha256, same)
    assert loaded["sha256"] == info["sha256"]
    with pytest.raises(judge.JudgeError, match=r"code_sha256: the judge was trained with"):
        judge.load(files, classifier, info["protocol_hash"], info["dataset_fingerprint"], "0" * 64)
