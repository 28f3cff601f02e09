"""Benchmark files: the committed ones validate; every kind of mistake gets FILE: FIELD: problem."""

import pytest
import yaml
from support import REPO

from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark, parse_benchmark
from benchbias.foundation.config import ConfigError

SMOKE = REPO / "benchmarks" / "synthetic-smoke.yaml"


def smoke_raw():
    return yaml.safe_load(SMOKE.read_text())


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks").glob("*.yaml")), ids=lambda p: p.stem)
def test_committed_benchmarks_validate(path):
    bench = load_benchmark(path)
    assert bench.name == path.stem
    assert bench.methods and bench.classifier.steps > 0


def test_quick_benchmark_is_the_papers_sweep():
    bench = load_benchmark(find_benchmark("synthetic-quick"))
    assert bench.domains.target_fractions == tuple(round(0.1 * i, 1) for i in range(11))
    assert bench.domains.source_tumor_fraction == 0.5


def test_hashes_are_stable_and_sensitive():
    a, b = parse_benchmark(smoke_raw(), "a"), parse_benchmark(smoke_raw(), "b")
    assert a.hash() == b.hash() and a.protocol_hash() == b.protocol_hash()
    raw = smoke_raw()
    raw["methods"]["l1"]["params"]["filters"] = 16
    changed = parse_benchmark(raw, "c")
    assert changed.hash() != a.hash() and changed.protocol_hash() == a.protocol_hash()
    raw["seeds"] = [3, 4]  # translator seeds are replicates, not protocol
    reseeded = parse_benchmark(raw, "e")
    assert reseeded.hash() != changed.hash() and reseeded.protocol_hash() == a.protocol_hash()
    raw["split"]["seed"] = 7  # the split (and the classifier's seed) is protocol
    assert parse_benchmark(raw, "d").protocol_hash() != a.protocol_hash()


def mutate(path, value):
    raw = smoke_raw()
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("colour",), "red", "colour: unknown key"),
        (("domains", "target_fractions"), [0.0, -0.1], "domains.target_fractions[1]: must be a fraction in [0, 1], got -0.1"),
        (("domains", "target_fractions"), [0.5, 0.5], "domains.target_fractions: contains duplicates"),
        (("domains", "source_size"), "many", "domains.source_size: must be an integer, got str 'many'"),
        (("domains", "source_tumor_fraction"), 2, "domains.source_tumor_fraction: must be a fraction in [0, 1], got 2"),
        (("domains", "holdout_size"), 15, "domains.holdout_size: must be even"),
        (("slices", "image_size"), 30, "slices.image_size: must be divisible by 4"),
        (("slices", "min_brain_fraction"), "lots", "slices.min_brain_fraction: must be a number"),
        (("slices", "colour"), 1, "slices.colour: unknown key"),
        (("methods",), {}, "methods: must be a non-empty mapping"),
        (("methods", "l1", "lr"), 0.1, "methods.l1.lr: unknown key"),
        (("training",), KeyError, "methods.l1.steps: is required when training.steps is not given"),
        (("classifier", "steps"), KeyError, "classifier.steps: is required"),
        (("dataset", "path"), "/data", "dataset: give exactly one of 'synthetic' or 'path'"),
        (("dataset", "synthetic", "shape"), [48, 48], "dataset.synthetic.shape: must have 3 entries"),
        (("seeds",), [0, True], "seeds[1]: must be an integer, got bool True"),
        (("name",), KeyError, "name: is required"),
        (("slices", "half"), "top", "slices.half: must be one of null, left, right, got 'top'"),
        (("slices", "normalization"), "zscore", "slices.normalization: must be one of percentile, max, dataset_max, per_slice, got 'zscore'"),
        (("split", "method"), "alphabetical", "split.method: must be one of random, ordered, got 'alphabetical'"),
        (("split", "order"), "ordered", "split.order: unknown key"),
        (("domains", "holdout_tumor_fraction"), 1.5, "domains.holdout_tumor_fraction: must be a fraction in [0, 1], got 1.5"),
    ],
)
def test_validation_errors_name_file_and_field(path, value, message):
    with pytest.raises(ConfigError) as err:
        parse_benchmark(mutate(path, value), "bench.yaml")
    assert str(err.value).startswith(f"bench.yaml: {message}")
    assert "\n" not in str(err.value)


def test_yaml_syntax_error_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: invalid YAML"):
        load_benchmark(broken)
    with pytest.raises(ConfigError, match=r"benchmark file does not exist"):
        find_benchmark(str(tmp_path / "missing.yaml"))


def test_options_added_later_leave_the_hashes_of_benchmarks_that_do_not_use_them():
    bench = parse_benchmark(smoke_raw(), "x")
    assert "target_overlaps_source" not in bench.to_dict()["domains"]
    raw = smoke_raw()
    raw["domains"]["target_overlaps_source"] = False
    assert parse_benchmark(raw, "x").protocol_hash() == bench.protocol_hash()
    raw["domains"]["target_overlaps_source"] = True
    assert parse_benchmark(raw, "x").protocol_hash() != bench.protocol_hash()
    raw = smoke_raw()
    raw["split"]["holdout_subjects"] = ["BraTS_Synth_001", "BraTS_Synth_001"]
    with pytest.raises(ConfigError, match=r"x: split.holdout_subjects: contains duplicates"):
        parse_benchmark(raw, "x")
    raw["split"]["holdout_subjects"] = ["BraTS_Synth_001", 7]
    with pytest.raises(ConfigError, match=r"x: split.holdout_subjects\[1\]: must be a non-empty string, got int 7"):
        parse_benchmark(raw, "x")


def test_method_may_run_a_plugin_under_another_name():
    raw = smoke_raw()
    raw["methods"]["l1-wide"] = {"plugin": "l1", "params": {"filters": 16}}
    bench = parse_benchmark(raw, "x")
    wide = next(m for m in bench.methods if m.name == "l1-wide")
    assert wide.plugin == "l1" and wide.steps == raw["training"]["steps"]


def test_optional_methods_train_only_when_named():
    from benchbias.foundation import load_registry
    from benchbias.run.inputs import plugins_of

    plain = parse_benchmark(smoke_raw(), "x")
    raw = smoke_raw()
    raw["methods"]["l1-wide"] = {"plugin": "l1", "params": {"filters": 16}, "optional": True}
    bench = parse_benchmark(raw, "x")
    assert bench.optional_methods == ("l1-wide",)
    assert bench.protocol_hash() == plain.protocol_hash() and bench.hash() != plain.hash()
    registry = load_registry()
    assert "l1-wide" not in [m.name for m in plugins_of(bench, registry).methods]
    assert [m.name for m in plugins_of(bench, registry, ("l1-wide",)).methods] == ["l1-wide"]
    raw["methods"] = {"l1": {"optional": True}}
    with pytest.raises(ConfigError, match=r"x: methods: every method is optional"):
        parse_benchmark(raw, "x")
    raw["methods"] = {"l1": {}, "l1-wide": {"plugin": "l1", "optional": "yes"}}
    with pytest.raises(ConfigError, match=r"x: methods.l1-wide.optional: must be true or false"):
        parse_benchmark(raw, "x")


def test_new_slice_split_and_domain_options_default_to_the_old_behaviour():
    bench = parse_benchmark(smoke_raw(), "x")
    assert bench.slices.half is None and bench.slices.normalization == "percentile"
    assert bench.split.method == "random" and bench.domains.holdout_tumor_fraction == 0.5
    raw = smoke_raw()
    raw["slices"].update(half="right", normalization="dataset_max")
    raw["split"]["method"] = "ordered"
    raw["domains"].update(holdout_size=15, holdout_tumor_fraction=0.53)  # odd is fine when not balanced
    bench = parse_benchmark(raw, "y")
    assert (bench.slices.half, bench.slices.normalization, bench.split.method) == ("right", "dataset_max", "ordered")
    assert bench.domains.holdout_size == 15 and bench.domains.holdout_tumor_fraction == 0.53


def test_paper_benchmark_encodes_the_code_behind_the_figures(monkeypatch):
    monkeypatch.delenv("BRATS2013_DIR", raising=False)  # validating needs no data
    bench = load_benchmark(find_benchmark("brats2013-paper"))
    code = load_benchmark(find_benchmark("brats2013-paper-code"))
    s = bench.slices
    # Every slice stretched to its own range by imresize, enlarged bilinearly, on [-1, 1].
    assert (s.normalization, s.resize_mode, s.network_max, s.image_size) == ("per_slice", "bilinear", 1.0, (256, 512))
    assert (s.half, s.drop_ambiguous, s.min_brain_fraction) == ("left", False, code.slices.min_brain_fraction)
    d = bench.domains
    # Draws with replacement, numpy reseeded per draw, over the notebook's dict order of the subjects.
    assert (d.sampling, d.target_overlaps_source, d.paired_from_target) == ("with_replacement", True, True)
    assert (d.source_size, d.target_size, d.holdout_size, d.holdout_tumor_fraction) == (700, 700, 350, 0.5)
    order = bench.split.subject_order
    assert len(order) == 50 and set(order[30:]) == set(bench.split.holdout_subjects) == set(code.split.holdout_subjects)
    assert order[:3] == ("HG/0018", "HG/0019", "HG/0012")
    # The April judge: the deduplicated extreme domains, 12 batches of 64 an epoch for 200 epochs.
    assert (bench.classifier.population, bench.classifier.steps, bench.classifier.image_size) == ("fraction_extremes", 2400, (100, 200))
    assert bench.reference.judge_slices == 1008 and bench.reference.holdout_set == 301 and len(bench.reference.domain_slices) == 11
    for method in bench.methods:
        assert method.steps == 200 * 607  # 200 epochs of the unaligned loader's max(|A|, |B|) = |A|
        assert method.params["dropout"] == 0.5 and method.params.get("serial_batches", method.name == "cyclegan") is not False
    assert bench.precision.amp is False and bench.precision.tf32 is False
    assert bench.protocol_hash() != code.protocol_hash()


def test_paper_code_benchmark_encodes_the_cleaned_up_notebooks(monkeypatch):
    monkeypatch.delenv("BRATS2013_DIR", raising=False)  # validating needs no data
    bench = load_benchmark(find_benchmark("brats2013-paper-code"))
    assert bench.dataset.path == "${BRATS2013_DIR}/Synthetic_Data" and bench.dataset.layout == "brats2013"
    assert (bench.dataset.source, bench.dataset.target) == ("flair", "t1")
    s = bench.slices
    assert (s.half, s.normalization, s.drop_ambiguous, s.min_tumor_fraction) == ("left", "dataset_max", False, 0.01)
    assert s.min_brain_fraction == pytest.approx(0.30 / 1.30, abs=1e-6)  # the notebook: brain / non-brain > 0.30
    # The 20 holdout patients the notebook printed (its Python 2 dict order, not sorted ids): 8 HG + 12 LG.
    held = bench.split.holdout_subjects
    assert len(held) == 20 and sum(h.startswith("HG/") for h in held) == 8 and "LG/0023" in held and "HG/0002" not in held
    assert bench.domains.target_overlaps_source  # the notebook drew domain B from all training slices
    assert bench.domains.paired_from_target and s.resize_mode == "bilinear" and bench.domains.sampling == "exact"
    condgan = next(m for m in bench.methods if m.name == "condgan")
    assert (condgan.params["gan_mode"], condgan.params["pool_size"], condgan.params["serial_batches"]) == ("lsgan", 50, True)
    d = bench.domains
    assert (d.source_size, d.target_size, d.source_tumor_fraction, d.holdout_size, d.holdout_tumor_fraction) == (700, 700, 0.5, 300, 0.53)
    assert d.target_fractions == tuple(round(0.1 * i, 1) for i in range(11))
    assert [m.name for m in bench.methods] == ["cyclegan", "condgan", "l1"]
    for method in bench.methods:
        assert method.steps == 200 * 700  # 200 epochs of 700 slices at batch 1
        assert {k: method.params[k] for k in ("filters", "blocks", "batch_size")} == {"filters": 64, "blocks": 9, "batch_size": 1}
    assert bench.classifier.plugin == "impartial-cnn"
    # The loader's scale_width: the 256 x 128 half slice at 512 x 256 (rows and columns transposed here);
    # uint8 0..100 read as x / 255 and normalised to [-1, 1]: the networks saw [-1, -0.216].
    assert s.image_size == (256, 512) and s.network_max == pytest.approx(100 / 255, abs=1e-6)
    # train_classifier.ipynb: the real targets of the 0% and 100% runs, Resize(100) of 512 x 256, batch 64.
    c = bench.classifier
    assert (c.population, c.image_size, c.params["batch_size"], c.params["lr"]) == ("fraction_extremes", (100, 200), 64, 0.001)


@pytest.mark.parametrize("name", ["brats2013-paper", "brats2013-paper-code"])
def test_paper_benchmark_parameters_fit_the_plugins(name):
    from benchbias.foundation.registry import load_registry

    registry = load_registry()
    bench = load_benchmark(find_benchmark(name))
    for method in bench.methods:
        if method.plugin not in registry.names("translator"):
            pytest.skip(f"translator plugin {method.plugin} is not installed")
        registry.get("translator", method.plugin).cls(**method.params)  # raises ParamError on a bad name or value
    registry.get("classifier", bench.classifier.plugin).cls(**bench.classifier.params)
