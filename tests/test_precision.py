"""A benchmark pins its precision: the run follows the pin, refuses other settings in one line, and
records an explicit override."""

import re

import pytest
from support import REPO, run_cli

from benchbias.foundation.benchmark_files import load_benchmark, parse_benchmark, read_yaml
from benchbias.foundation.config import ConfigError, PrecisionConfig
from benchbias.foundation.registry import load_registry
from benchbias.records.schemas import DEFS
from benchbias.run import Run, RunOptions
from benchbias.run.options import resolve_precision

SMOKE = REPO / "benchmarks" / "synthetic-smoke.yaml"


def smoke_with(precision: dict | None):
    raw = read_yaml(SMOKE)
    if precision is not None:
        raw["precision"] = precision
    return parse_benchmark(raw, "pinned.yaml")


def test_an_unpinned_benchmark_keeps_its_hashes_and_a_pin_changes_only_the_benchmark_hash():
    plain, pinned = smoke_with(None), smoke_with({"amp": False, "tf32": False})
    assert plain.precision == PrecisionConfig() and "precision" not in plain.to_dict()
    assert smoke_with({"amp": None}).hash() == plain.hash()
    assert pinned.precision == PrecisionConfig(amp=False, tf32=False)
    assert pinned.hash() != plain.hash()
    assert pinned.protocol_hash() == plain.protocol_hash()


@pytest.mark.parametrize(
    "precision, message",
    [
        ({"amp": "no"}, "pinned.yaml: precision.amp: must be true or false, got 'no'"),
        ({"fp16": True}, "pinned.yaml: precision.fp16: unknown key (allowed: amp, tf32)"),
    ],
)
def test_a_bad_precision_section_is_one_line_naming_the_field(precision, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        smoke_with(precision)


def test_the_paper_benchmarks_pin_float32_without_tf32():
    bench = load_benchmark(REPO / "benchmarks" / "brats2013-paper.yaml")
    assert bench.precision == PrecisionConfig(amp=False, tf32=False)


def test_a_run_follows_the_pin_refuses_other_settings_and_records_an_override():
    pinned = smoke_with({"amp": False, "tf32": False})
    followed = resolve_precision(pinned, None, None, False)
    assert (followed.amp, followed.tf32, followed.overridden) == (False, False, ())
    assert resolve_precision(smoke_with(None), None, None, False).amp is True  # unpinned: autocast on CUDA, as before
    assert resolve_precision(pinned, False, False, False).overridden == ()  # asking for the pin is not an override
    with pytest.raises(ConfigError, match=r"^--amp: pinned.yaml pins precision.amp: false; .*--override-precision"):
        resolve_precision(pinned, True, None, False)
    with pytest.raises(ConfigError, match=r"^--tf32: pinned.yaml pins precision.tf32: false"):
        resolve_precision(pinned, None, True, False)
    overridden = resolve_precision(pinned, True, True, True)
    assert (overridden.amp, overridden.tf32, overridden.overridden) == (True, True, ("amp", "tf32"))


def test_an_override_is_in_the_runs_compute_settings_and_valid_results(tmp_path):
    from jsonschema import Draft202012Validator

    pinned = smoke_with({"amp": False})
    run = Run(pinned, load_registry(), RunOptions(out=tmp_path, device="cpu", amp=True, override_precision=True))
    settings = run.compute_settings()
    assert settings["precision_override"] == ["amp"]
    assert settings["amp"] is False  # on the CPU autocast does nothing, whatever was asked
    schema = {"$defs": DEFS, "$ref": "#/$defs/compute_settings"}
    Draft202012Validator(schema).validate(settings)
    plain = Run(pinned, load_registry(), RunOptions(out=tmp_path, device="cpu")).compute_settings()
    assert "precision_override" not in plain and "tf32" not in plain  # CPU cells keep their keys
    Draft202012Validator(schema).validate(plain)


def test_the_command_line_refuses_a_pinned_precision_in_one_line(tmp_path):
    path = tmp_path / "pinned.yaml"
    path.write_text(SMOKE.read_text() + "precision: {amp: false}\n")
    result = run_cli("run", str(path), "--amp", "--out", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pins precision.amp: false" in lines[0], result.stderr
    assert not (tmp_path / "run" / "results.json").exists()
