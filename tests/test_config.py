"""Benchmark files: the committed ones validate; every kind of mistake gets FILE: FIELD: problem."""
import pytest
import yaml
from support import REPO

from benchbias.config import ConfigError, find_benchmark, load_benchmark, parse_benchmark

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
    raw["split"]["seed"] = 7
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


def test_method_may_run_a_plugin_under_another_name():
    raw = smoke_raw()
    raw["methods"]["l1-wide"] = {"plugin": "l1", "params": {"filters": 16}}
    bench = parse_benchmark(raw, "x")
    wide = next(m for m in bench.methods if m.name == "l1-wide")
    assert wide.plugin == "l1" and wide.steps == raw["training"]["steps"]
