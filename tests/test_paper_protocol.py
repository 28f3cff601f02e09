"""Options the paper benchmark needs, at tiny scale: non-square slices (``slices.image_size: [rows,
columns]``), the translators' intensity range (``slices.network_max``), and the judge's population and
size (``classifier.population``, ``classifier.image_size``); all of them leave the benchmarks that do
not use them, and their pinned judges, as they were."""

import json

import numpy as np
import pytest
import torch
import yaml
from support import REPO, run_cli

from benchbias.api import to_network, to_unit
from benchbias.data.protocol import ProtocolError, Split, judge_population, unpaired_domains
from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark, parse_benchmark
from benchbias.foundation.config import ConfigError, DomainConfig, SliceConfig, slice_options
from benchbias.foundation.jsonio import read_json
from benchbias.foundation.registry import load_registry
from benchbias.judges import pinned
from benchbias.nets.networks import impartial_cnn
from benchbias.nets.scale import unit_images

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
    assert parse(classifier={"image_size": [100, 200]}).classifier.image_size == (100, 200)
    assert parse().classifier.image_size is None and parse().classifier.population == "train_targets"


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
        ("classifier", "image_size", [10, 20], "classifier.image_size[0]: must be >= 16, got 10"),
        ("classifier", "population", "everything", "classifier.population: must be one of train_targets, fraction_extremes, got 'everything'"),
        ("classifier", "size", 64, "classifier.size: unknown key"),
    ],
)
def test_bad_values_are_one_line_naming_the_field(section, key, value, message):
    with pytest.raises(ConfigError) as err:
        parse(**{section: {key: value}})
    assert str(err.value).startswith(f"bench.yaml: {message}") and "\n" not in str(err.value)


@pytest.mark.slow
def test_bad_image_size_stops_benchbias_run_with_one_line(tmp_path):
    raw = smoke_raw()
    raw["slices"]["image_size"] = [32, 18]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = run_cli("run", str(path), "--out", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.strip() == f"benchbias: error: {path}: slices.image_size[1]: must be divisible by 4 (two stride-2 stages), got 18"


@pytest.mark.parametrize("name", SYNTHETIC)
def test_new_options_leave_the_committed_benchmarks_and_their_pinned_judges(name):
    bench = load_benchmark(find_benchmark(name))
    config = bench.to_dict()
    assert "network_max" not in config["slices"] and not {"population", "image_size"} & set(config["classifier"])
    record = read_json(REPO / "benchmarks" / "judges" / f"{name}.json")
    assert bench.protocol_hash() == record["protocol_hash"]
    raw = yaml.safe_load(find_benchmark(name).read_text())
    raw["slices"]["network_max"] = 1.0  # written out at their defaults: still the same protocol
    raw["classifier"].update(population="train_targets")
    raw["slices"]["image_size"] = [bench.slices.image_size] * 2
    assert parse_benchmark(raw, "x").protocol_hash() == bench.protocol_hash()


def test_network_max_changes_the_protocol_but_not_the_prepared_slices():
    assert parse(slices={"network_max": 0.4}).protocol_hash() != parse().protocol_hash()
    assert slice_options(SliceConfig(network_max=0.4)) == slice_options(SliceConfig())  # cache key and data identity
    assert slice_options(SliceConfig(image_size=(32, 16))) != slice_options(SliceConfig())


# ---- the translators' range ---------------------------------------------------------------------


def test_network_range_maps_unit_slices_and_back_clamped():
    unit = np.linspace(0.0, 1.0, 11, dtype=np.float32).reshape(1, 1, 11)
    assert torch.equal(to_network(unit_images(unit)), torch.from_numpy(unit)[:, None] * 2.0 - 1.0)  # the default is today's mapping
    paper = to_network(unit_images(unit), 100 / 255)
    assert paper.min() == -1.0 and paper.max() == pytest.approx(-1 + 200 / 255)  # [-1, -0.216]
    np.testing.assert_allclose(to_unit(paper, 100 / 255, clamp=True)[:, 0].numpy(), unit, atol=1e-6)
    assert float(to_unit(torch.tensor([0.5]), 100 / 255, clamp=True)) == 1.0  # brighter than the data: clamped
    assert float(to_unit(torch.tensor([0.5]), 100 / 255)) > 1.0  # unclamped unless asked


# ---- the judge ------------------------------------------------------------------------------------


def test_judge_population_fraction_extremes_is_the_real_targets_of_fractions_0_and_1():
    is_tumor = np.random.default_rng(0).random(300) < 0.45
    split = Split(train=np.arange(220), holdout=np.arange(220, 260), train_subjects=(), holdout_subjects=())
    domains = DomainConfig(source_size=40, target_size=30, holdout_size=40, target_fractions=(0.0, 0.5, 1.0))
    assert judge_population(split, is_tumor, domains, "train_targets", 0) is split.train
    judged = judge_population(split, is_tumor, domains, "fraction_extremes", 3)
    expected = np.concatenate([unpaired_domains(split.train, is_tumor, domains, r, 3).target for r in (0.0, 1.0)])
    np.testing.assert_array_equal(judged, np.sort(expected))
    assert (int(is_tumor[judged].sum()), int((~is_tumor[judged]).sum())) == (30, 30) and np.isin(judged, split.train).all()
    with pytest.raises(ProtocolError, match=r"^classifier.population: fraction_extremes: domains.target_size: asks for 0 tumor \+ 500 healthy"):
        judge_population(split, is_tumor, DomainConfig(source_size=40, target_size=500), "fraction_extremes", 0)


def test_judge_reads_unit_slices_on_minus_one_to_one_resized_when_asked():
    unit = torch.rand(3, 1, 32, 16)
    assert torch.equal(pinned.inputs(unit), unit * 2.0 - 1.0)
    resized = pinned.inputs(unit, (24, 16))
    assert resized.shape == (3, 1, 24, 16) and resized.min() >= -1.0 and resized.max() <= 1.0


def test_impartial_cnn_takes_rows_by_columns_and_the_notebooks_architecture():
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
    # train_classifier.ipynb: 64, 32, 16, 8 filters without padding; Linear(440, 2) at 200 x 100 (here transposed).
    notebook = cls(channels=64, growth=0.5, padding=0)
    notebook._build((100, 200))
    convs = [m for m in notebook.network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 32, 16, 8] and all(c.padding == (0, 0) for c in convs)
    assert notebook.network[-1].in_features == 440
    assert impartial_cnn((100, 200), (64, 32, 16, 8), padding=0)[-1].in_features == 440


@pytest.mark.parametrize("name", SYNTHETIC)
def test_committed_judges_load_with_the_current_classifier_code(name):
    files = pinned.JudgeFiles.beside(REPO / "benchmarks" / f"{name}.yaml", name)
    info = read_json(files.info)
    entry = load_registry().get("classifier", info["name"])
    classifier = entry.cls(**info["params"]) if set(info["params"]) <= set(entry.cls.params) else entry.cls()
    same = tuple(getattr(entry.cls, "same_results_as", ()))
    loaded = pinned.load(files, classifier, info["protocol_hash"], info["dataset_fingerprint"], entry.code_sha256, same)
    assert loaded["sha256"] == info["sha256"]
    with pytest.raises(pinned.JudgeError, match=r"code_sha256: the judge was trained with"):
        pinned.load(files, classifier, info["protocol_hash"], info["dataset_fingerprint"], "0" * 64)


# ---- end to end ------------------------------------------------------------------------------------

RECORDER = '''
import json

from benchbias.api import Translator, hookimpl


class Recorder(Translator):
    """The identity; writes the range and size of what it is given to seen.json in its cell folder."""
    name = "recorder"
    paired = True

    def fit(self, data, ctx):
        self.workdir = ctx.workdir
        self.seen = {"train": [float(data.source.min()), float(data.source.max()), float(data.target.min()), float(data.target.max())],
                     "size": list(data.source.shape[-2:])}
        for _ in ctx.loop():
            pass

    def translate(self, source):
        low, high = self.seen.get("translate", [1.0, -1.0])
        self.seen["translate"] = [min(low, float(source.min())), max(high, float(source.max()))]
        (self.workdir / "seen.json").write_text(json.dumps(self.seen))
        return source.clone()


@hookimpl
def register_translators(register):
    register(Recorder)
'''


@pytest.mark.slow
def test_non_square_slices_in_the_papers_range_run_end_to_end(tmp_path):
    """T1 -> T1 with the identity: a perfect translation, so MAE must be exactly 0 and nothing out of
    range, at 32 x 16 slices on [-1, -0.2], with the judge trained on the fraction-0 and fraction-1
    targets and reading them at 24 x 16."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "recorder.py").write_text(RECORDER)
    raw = smoke_raw()
    raw["name"] = "tiny-paper"
    raw["dataset"].update(source="t1", target="t1")
    raw["slices"].update(image_size=[32, 16], network_max=0.4)
    raw["classifier"].update(population="fraction_extremes", image_size=[24, 16], steps=20)
    raw["methods"] = {"recorder": {}}
    path = tmp_path / "tiny-paper.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    result = run_cli("run", str(path), "--plugin-dir", str(tmp_path / "plugins"), "--out", str(out), "--no-progress", "--threads", "1")
    assert result.returncode == 0, result.stderr
    results = read_json(out / "results.json")
    cells = results["methods"]["recorder"]["cells"]
    assert [c["scores"]["mae"] for c in cells] == [0.0, 0.0, 0.0]
    assert [c["scores"]["out_of_range"] for c in cells] == [0.0, 0.0, 0.0]
    for cell in cells:
        folder = out / "cells" / "recorder" / f"r{cell['ratio']:.3f}-s0"
        seen = json.loads((folder / "seen.json").read_text())
        assert seen["size"] == [32, 16]
        for low, high in (seen["train"][:2], seen["train"][2:], seen["translate"]):
            assert low == pytest.approx(-1.0) and -0.25 < high <= -0.2 + 1e-6  # the range reached the translator
        assert np.load(folder / "judged.npz")["example_translated"].shape == (2, 32, 16)
        assert np.load(folder / "translations.npz")["translated"].shape[1:] == (32, 16)
    assert np.load(out / "examples.npz")["source"].shape == (2, 32, 16)
    size = raw["domains"]["target_size"]
    assert (results["classifier"]["train_slices"], results["classifier"]["train_tumor_slices"]) == (2 * size, size)
    weights = torch.load(results["classifier"]["file"], weights_only=True)
    assert weights["image_size"].tolist() == [24, 16]
    assert results["benchmark"]["config"]["slices"]["image_size"] == [32, 16]
    assert (out / "figure3.png").stat().st_size > 10_000
