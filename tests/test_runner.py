"""The runner in-process: determinism, resume after a crash, plugin parameter errors."""

import json

import numpy as np
import pytest
import torch
import yaml
from support import REPO, core_scores

from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark, parse_benchmark
from benchbias.foundation.config import ConfigError, with_translators
from benchbias.foundation.registry import load_registry
from benchbias.run import executors
from benchbias.run.options import RunOptions
from benchbias.run.runner import Run
from benchbias.scoring.summary import trend


def smoke():
    return load_benchmark(find_benchmark("synthetic-smoke"))


def run(out, bench=None, methods=("l1",)):
    return Run(bench or smoke(), load_registry(), RunOptions(out=out, progress=False, device="cpu", methods=methods)).execute()


@pytest.mark.slow
def test_same_config_and_seed_give_identical_scores(tmp_path):
    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert second["provenance"]["cells_reused"] == 0  # really recomputed
    assert first["classifier"]["holdout_accuracy"] == second["classifier"]["holdout_accuracy"]

    def untimed(cells):
        return [{k: v for k, v in c.items() if not k.endswith("_time_s")} for c in cells]

    assert untimed(first["methods"]["l1"]["cells"]) == untimed(second["methods"]["l1"]["cells"])
    assert first["methods"]["l1"]["summary"] == second["methods"]["l1"]["summary"]
    a, b = np.load(tmp_path / "a" / "examples.npz"), np.load(tmp_path / "b" / "examples.npz")
    np.testing.assert_array_equal(a["source"], b["source"])


def test_crash_mid_run_keeps_finished_cells_and_rerun_resumes(tmp_path, monkeypatch):
    calls = []
    original = executors.compute_program

    def crash_on_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(executors, "compute_program", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "out")
    cells = sorted((tmp_path / "out" / "cells" / "l1").glob("*.json"))
    assert [c.name for c in cells] == ["r0.000-s0.json"]
    json.loads(cells[0].read_text())  # complete JSON
    assert not (tmp_path / "out" / "results.json").exists()
    assert not list((tmp_path / "out").rglob("*.tmp"))
    monkeypatch.setattr(executors, "compute_program", original)
    results = run(tmp_path / "out")
    assert results["provenance"]["cells_reused"] == 1 and results["provenance"]["cells_run"] == 2


@pytest.mark.slow
def test_changed_method_params_invalidate_only_that_methods_cells(tmp_path):
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["methods"]["l1-wide"] = {"plugin": "l1", "params": {"filters": 8, "blocks": 1, "batch_size": 4}}
    first = run(tmp_path, parse_benchmark(raw, "x.yaml"), methods=("l1", "l1-wide"))
    assert first["provenance"]["cells_run"] == 6
    raw["methods"]["l1-wide"]["params"]["filters"] = 4
    second = run(tmp_path, parse_benchmark(raw, "x.yaml"), methods=("l1", "l1-wide"))
    assert second["provenance"]["cells_reused"] == 3 and second["provenance"]["cells_run"] == 3
    assert second["methods"]["l1-wide"]["params"]["filters"] == 4


def test_every_baseline_trains_and_translates_on_the_smoke_benchmark(tmp_path):
    results = run(tmp_path, methods=())
    assert set(results["methods"]) == {"l1", "cyclegan", "condgan", "gan", "pix2pix"}
    for name, method in results["methods"].items():
        assert method["paired"] == (name in ("l1", "condgan", "pix2pix"))
        for cell in method["cells"]:
            assert 0.0 < cell["scores"]["mae"] < 1.0
            translated = np.load(tmp_path / "cells" / name / f"r{cell['ratio']:.3f}-s0" / "translations.npz")["translated"]
            assert translated.shape == (cell["scores"]["n_holdout"], 32, 32) and translated.min() >= 0.0 and translated.max() <= 1.0
    assert (tmp_path / "figure2.png").stat().st_size > 10_000


def test_bad_plugin_params_name_the_field():
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["methods"]["l1"]["params"]["filterz"] = 3
    with pytest.raises(ConfigError, match=r"^x.yaml: methods.l1.params: l1: unknown parameter 'filterz'"):
        Run(parse_benchmark(raw, "x.yaml"), load_registry(), RunOptions(out="unused"))
    raw["methods"]["l1"]["params"] = {"blocks": "two"}
    with pytest.raises(ConfigError, match=r"methods.l1.params: l1: parameter 'blocks' must be int, got str"):
        Run(parse_benchmark(raw, "x.yaml"), load_registry(), RunOptions(out="unused"))


def test_cell_scores_on_known_inputs():
    real = torch.zeros(4, 1, 2, 2)
    translated = real.clone()
    translated[0] = 0.5  # error 0.5 everywhere on image 0
    mask = torch.zeros(4, 1, 2, 2, dtype=torch.bool)
    mask[2, 0, 0, 0] = True
    translated[2, 0, 0, 0] = 1.0  # error 1.0 on the single tumor pixel
    source_is_tumor = np.array([False, False, True, True])
    p_real = np.array([0.1, 0.9, 0.9, 0.8])  # classifier on real T1: healthy, tumor, tumor, tumor
    p_translated = np.array([0.7, 0.9, 0.2, 0.6])  # translations: tumor, tumor, healthy, tumor
    s = core_scores(translated, real, mask, source_is_tumor, p_translated, p_real)
    assert s["tumor_called"] == 0.75
    assert s["tumor_called_healthy_inputs"] == 1.0 and s["tumor_called_tumor_inputs"] == 0.5
    assert s["added"] == 1.0  # the one slice called healthy on real T1 became tumor
    assert s["removed"] == pytest.approx(1 / 3)
    assert s["flip_rate"] == 0.5
    assert s["mae"] == pytest.approx((0.5 + 0 + 0.25 + 0) / 4)
    assert s["mae_inside_tumor"] == 1.0
    assert s["mae_outside_tumor"] == pytest.approx((0.5 + 0 + 0 + 0) / 4)  # per slice, then over slices
    assert s["mae_healthy_inputs"] == 0.25 and s["mae_tumor_inputs"] == 0.125


def test_trend_slope_and_spearman():
    t = trend([0.0, 0.5, 1.0, 0.0, 0.5, 1.0], [0.1, 0.35, 0.6, 0.1, 0.35, 0.6])
    assert t["slope"] == pytest.approx(0.5) and t["intercept"] == pytest.approx(0.1)
    assert t["spearman_rho"] == pytest.approx(1.0)
    flat = trend([0.0, 0.5, 1.0], [0.2, 0.2, 0.2])
    assert flat["slope"] == 0.0 and flat["slope_p"] is None and flat["spearman_rho"] is None


DIVERGING = '''
import torch
from benchbias.api import Translator, hookimpl


class Diverging(Translator):
    """Identity for the first cell it trains, NaN from the second on."""
    name = "diverging"
    paired = True
    fits = 0

    def fit(self, data, ctx):
        type(self).fits += 1
        for _ in ctx.loop():
            pass

    def translate(self, source):
        return source if type(self).fits < 2 else torch.full_like(source, float("nan"))


@hookimpl
def register_translators(register):
    register(Diverging)
'''


@pytest.mark.slow
def test_nan_translations_stop_the_run_naming_the_cell_and_keep_finished_cells(tmp_path):
    from support import run_cli

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "diverging.py").write_text(DIVERGING)
    out = tmp_path / "run"
    result = run_cli("run", "synthetic-smoke", "--translator", "diverging", "--plugin-dir", str(tmp_path / "plugins"), "--out", str(out), "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "methods.diverging (plugin diverging) at target fraction 0.5, seed 0" in lines[0]
    assert "NaN or infinite" in lines[0]
    assert [p.name for p in (out / "cells" / "diverging").glob("*.json")] == ["r0.000-s0.json"]
    assert not (out / "results.json").exists()


NUMPY_OR_LOUD = '''
import numpy as np
from benchbias.api import Translator, hookimpl


class Loud(Translator):
    """Identity times {gain}; returns {kind}."""
    name = "loud"
    paired = True

    def fit(self, data, ctx):
        for _ in ctx.loop():
            pass

    def translate(self, source):
        out = source * {gain}
        return out.numpy() if "{kind}" == "numpy" else out


@hookimpl
def register_translators(register):
    register(Loud)
'''


def loud_plugin(folder, gain=1.0, kind="tensor"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loud.py").write_text(NUMPY_OR_LOUD.format(gain=gain, kind=kind))
    return folder


@pytest.mark.slow
def test_translate_must_return_a_tensor(tmp_path):
    from support import run_cli

    plugins = loud_plugin(tmp_path / "plugins", kind="numpy")
    result = run_cli("run", "synthetic-smoke", "--translator", "loud", "--plugin-dir", str(plugins), "--out", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "methods.loud (plugin loud) at target fraction 0, seed 0: translate() returned numpy.ndarray" in lines[0]
    assert "must return a torch.Tensor" in lines[0]


def test_out_of_range_output_is_recorded_and_an_edited_plugin_is_recomputed(tmp_path):
    bench = with_translators(smoke(), ["loud"], {})
    plugins = loud_plugin(tmp_path / "plugins", gain=1.0)

    def go(threads=None):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads or previous)
        try:
            registry = load_registry([plugins])
            return Run(bench, registry, RunOptions(out=tmp_path / "run", progress=False, device="cpu", methods=("loud",))).execute()
        finally:
            torch.set_num_threads(previous)

    first = go()
    assert first["provenance"]["cells_run"] == 3
    assert all(c["scores"]["out_of_range"] == 0.0 for c in first["methods"]["loud"]["cells"])
    assert go()["provenance"]["cells_reused"] == 3, "nothing changed: every cell is reused"

    loud_plugin(plugins, gain=1.5)  # the same name, params and steps; other code
    edited = go()
    assert edited["provenance"]["cells_run"] == 3, "an edited plugin file must not reuse the old code's cells"
    shares = [c["scores"]["out_of_range"] for c in edited["methods"]["loud"]["cells"]]
    assert all(0.0 < share < 1.0 for share in shares), shares  # bright pixels pushed past 1, recorded
    assert edited["methods"]["loud"]["version"] != first["methods"]["loud"]["version"]

    other_threads = 2 if torch.get_num_threads() != 2 else 1
    assert go(other_threads)["provenance"]["cells_run"] == 3, "cells made with another thread count are not mixed in"
    assert edited["provenance"]["compute_settings"]["device"] == "cpu"


@pytest.mark.slow
def test_fractions_trained_together_are_stored_as_cells_and_a_lost_cell_retrains_its_program(tmp_path):
    """training.models_per_program 2 over fractions 0, 0.5, 1: programs {0, 0.5} and {1}. Each cell
    records how many models it trained with and carries it in its fingerprint; a rerun reuses every
    cell; a lost cell retrains its whole program (the same numbers again) and replaces only itself."""
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["training"]["models_per_program"] = 2
    together = parse_benchmark(raw, "x.yaml")
    first = run(tmp_path / "a", together)
    cells = {c["ratio"]: c for c in first["methods"]["l1"]["cells"]}
    assert [cells[r].get("trained_together") for r in (0.0, 0.5, 1.0)] == [2, 2, None]
    alone = run(tmp_path / "b")["methods"]["l1"]["cells"]
    fingerprints = {c["ratio"]: c["fingerprint"] for c in alone}
    assert fingerprints[1.0] == cells[1.0]["fingerprint"]  # trained alone either way
    assert fingerprints[0.0] != cells[0.0]["fingerprint"] and fingerprints[0.5] != cells[0.5]["fingerprint"]

    stored = tmp_path / "a" / "cells" / "l1"
    kept_before = (stored / "r0.500-s0.json").stat().st_mtime_ns
    (stored / "r0.000-s0.json").unlink()
    again = run(tmp_path / "a", together)
    assert again["provenance"]["cells_run"] == 1 and again["provenance"]["cells_reused"] == 2
    assert (stored / "r0.500-s0.json").stat().st_mtime_ns == kept_before

    def untimed(c):
        return {k: v for k, v in c.items() if not k.endswith("_time_s")}

    assert untimed(again["methods"]["l1"]["cells"][0]) == untimed(first["methods"]["l1"]["cells"][0])


@pytest.mark.slow
def test_a_cell_records_its_translations_identity_and_a_swapped_translations_file_is_computed_again(tmp_path, capsys):
    from benchbias.run.cells import translations_sha256

    first = run(tmp_path)
    cells = sorted((tmp_path / "cells" / "l1").glob("*.json"))
    for path in cells:
        stored = np.load(path.with_suffix("") / "translations.npz")
        assert json.loads(path.read_text())["translations_sha256"] == translations_sha256(stored["translated"])
    # Swap in other translations of the same shape: the cell's scores are no longer of its file.
    swapped = cells[0].with_suffix("") / "translations.npz"
    with np.load(swapped) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["translated"] = np.ones_like(arrays["translated"])
    np.savez_compressed(swapped, **arrays)
    second = run(tmp_path)
    assert second["provenance"]["cells_run"] == 1 and second["provenance"]["cells_reused"] == len(cells) - 1
    assert "translations_sha256 differs" in capsys.readouterr().err

    def untimed(results):
        return [{k: v for k, v in c.items() if not k.endswith("_time_s")} for c in results["methods"]["l1"]["cells"]]

    assert untimed(second) == untimed(first)  # the same cell again, from the same seed
