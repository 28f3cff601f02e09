"""Fault injection: every bad input is one line with exit 2, and every damaged file benchbias wrote
itself (a cell, its example slices, the generated data set) is recomputed, never fatal.

The ``main()`` calls run the command line in-process (the same code path as the console script,
without a new interpreter per case); ``test_cli.py`` covers the subprocess path."""

import errno
import json
import os
import re
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import REPO

from benchbias.cli import main
from benchbias.foundation import jsonio
from benchbias.foundation.jsonio import read_json

SMOKE = REPO / "benchmarks" / "synthetic-smoke.yaml"


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("benchbias: error: "), lines[0]
    return lines[0][len("benchbias: error: ") :]


# ---- bad input: one line, exit 2 ----------------------------------------------------------------


def smoke_text() -> str:
    return SMOKE.read_text()


BAD_BENCHMARKS = {
    "binary": (b"\x00\x01\xff\xfe name", r"is not UTF-8 text \(byte 0xff at offset 2\)"),
    "nul bytes": (b"name: a\x00b\n", r"is not a text file \(contains NUL bytes\)"),
    "syntax": (b"name: a\n  b: [\n", r"invalid YAML: line 2, column 4: mapping values are not allowed here"),
    "unclosed": (b"name: [unclosed\n", r"invalid YAML: line 2, column 1: "),
    "empty": (b"", r"is empty$"),
    "comments only": (b"# nothing here\n\n", r"is empty$"),
    "duplicate key": (smoke_text().encode() + b"seeds: [1]\n", r"line \d+, column 1: duplicate key 'seeds'"),
    "nested duplicate": (smoke_text().replace("  seed: 0\ndomains:", "  seed: 0\n  seed: 1\ndomains:").encode(), r"duplicate key 'seed'"),
    "unknown method": (smoke_text().replace("\n  l1:\n", "\n  l2:\n").encode(), r"methods\.l2: unknown translator 'l2' \(available: .*l1"),
    "unknown plugin": (smoke_text().replace("\n  l1:\n", "\n  l1:\n    plugin: l3\n").encode(), r"methods\.l1\.plugin: unknown translator 'l3'"),
    "unknown classifier": (smoke_text().replace("name: impartial-cnn", "name: nosuch").encode(), r"classifier\.name: unknown classifier 'nosuch'"),
    "not a mapping": (b"- a\n- b\n", r"\(top level\)|: must be a mapping, got list"),
}


@pytest.mark.parametrize("case", BAD_BENCHMARKS, ids=str)
def test_bad_benchmark_file_is_one_line_naming_it(tmp_path, capsys, case):
    content, expected = BAD_BENCHMARKS[case]
    path = tmp_path / "bench.yaml"
    path.write_bytes(content)
    code, _, err = cli(capsys, "run", path, "--out", tmp_path / "out", "--no-progress")
    assert code == 2
    message = one_error_line(err)
    assert message.startswith(f"{path}: "), message
    assert re.search(expected, message), message
    assert not (tmp_path / "out").exists()  # refused before anything is written


BAD_OPTIONS = {
    "threads 0": (["--threads", "0"], r"^--threads 0: must be a positive number"),
    "threads -2": (["--threads", "-2"], r"^--threads -2: must be a positive number"),
    "device tpu": (["--device", "tpu"], r"^--device tpu: unknown device \(use auto, cpu, cuda or cuda:N\)"),
    "device mps": (["--device", "meta"], r"^--device meta: benchbias runs on cpu or cuda, not meta"),
    "bad param": (["--translator", "l1", "--param", "filters=[1"], r"^--param filters=\[1: VALUE is not valid YAML"),
}


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=str)
def test_bad_run_option_is_one_line_naming_it(tmp_path, capsys, case):
    options, expected = BAD_OPTIONS[case]
    code, _, err = cli(capsys, "run", SMOKE, "--out", tmp_path / "out", "--no-progress", *options)
    assert code == 2 and re.search(expected, one_error_line(err))


def test_output_folder_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    code, _, err = cli(capsys, "run", SMOKE, "--out", afile)
    assert code == 2 and one_error_line(err) == f"--out {afile}: is a file, not a folder"
    code, _, err = cli(capsys, "selftest", SMOKE, "--out", afile / "below")
    assert code == 2 and one_error_line(err) == f"--out {afile / 'below'}: {afile} is a file, so it cannot hold a folder"
    code, _, err = cli(capsys, "data", "synth", afile, "--subjects", "2")
    assert code == 2 and one_error_line(err) == f"data synth {afile}: is a file, not a folder (it writes a folder of subjects)"
    assert afile.read_text() == "keep me"


# ---- damaged run folders heal ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished smoke run of l1 (3 cells), copied by each test that damages it."""
    out = tmp_path_factory.mktemp("faults") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCHBIAS_CACHE", str(tmp_path_factory.getbasetemp() / "benchbias-cache"))
    try:
        assert main(["run", str(SMOKE), "--methods", "l1", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    finally:
        mp.undo()
    return out


def scores_of(results: dict) -> list:
    return [(c["ratio"], c["seed"], c["scores"]) for c in results["methods"]["l1"]["cells"]]


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


DAMAGES = {
    "truncated cell": (lambda out: truncate(out / "cells/l1/r0.500-s0.json"), "r0.500-s0.json: cannot be read (JSONDecodeError)"),
    "cell of another shape": (lambda out: (out / "cells/l1/r0.500-s0.json").write_text('{"a": 1}'), "r0.500-s0.json: fingerprint: is missing"),
    "garbage cell translations": (
        lambda out: (out / "cells/l1/r0.500-s0/translations.npz").write_bytes(b"garbage"),
        "r0.500-s0.json: translations.npz cannot be read (ValueError)",
    ),
    "truncated cell translations": (
        lambda out: truncate(out / "cells/l1/r0.500-s0/translations.npz"),
        "r0.500-s0.json: translations.npz cannot be read (BadZipFile)",
    ),
    "missing cell translations": (lambda out: (out / "cells/l1/r0.500-s0/translations.npz").unlink(), "r0.500-s0.json: translations.npz is missing"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", DAMAGES, ids=str)
def test_a_damaged_cell_is_named_and_recomputed_to_the_same_scores(finished_run, tmp_path, capsys, case):
    damage, warning = DAMAGES[case]
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    damage(out)
    code, _, err = cli(capsys, "run", SMOKE, "--methods", "l1", "--out", out, "--no-progress", "--threads", "1")
    assert code == 0, err
    assert [line for line in err.splitlines() if "warning" in line] == [f"benchbias: warning: {out}/cells/l1/{warning}; computing this cell again"]
    results, original = read_json(out / "results.json"), read_json(finished_run / "results.json")
    assert results["provenance"]["cells_run"] == 1 and results["provenance"]["cells_reused"] == 2
    assert scores_of(results) == scores_of(original)  # deterministic: the recomputed cell is the same cell
    with np.load(out / "cells/l1/r0.500-s0/translations.npz", allow_pickle=False) as arrays:
        assert arrays["translated"].shape[0] == results["methods"]["l1"]["cells"][0]["scores"]["n_holdout"]


def test_damaged_judge_readings_are_rescored_without_training(finished_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "cells/l1/r0.500-s0/judged.npz").write_bytes(b"garbage")
    code, _, err = cli(capsys, "run", SMOKE, "--methods", "l1", "--out", out, "--no-progress", "--threads", "1")
    assert code == 0, err
    results = read_json(out / "results.json")
    assert results["provenance"]["cells_run"] == 0 and results["provenance"]["cells_rescored"] == 1
    assert scores_of(results) == scores_of(read_json(finished_run / "results.json"))  # scoring stored translations gives the same numbers


def test_garbage_run_examples_and_results_are_rewritten(finished_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "examples.npz").write_bytes(b"garbage")
    (out / "results.json").write_bytes(b"garbage")
    (out / "report.html").write_text("stale")
    code, _, err = cli(capsys, "run", SMOKE, "--methods", "l1", "--out", out, "--no-progress", "--threads", "1")
    assert code == 0, err
    assert scores_of(read_json(out / "results.json")) == scores_of(read_json(finished_run / "results.json"))
    assert "<html" in (out / "report.html").read_text()
    with np.load(out / "examples.npz", allow_pickle=False) as arrays:
        assert {"source", "target", "tumor_mask", "is_tumor"} <= set(arrays.files)


def test_report_of_unreadable_examples_draws_gaps_with_a_warning(finished_run, tmp_path, capsys):
    from benchbias.report.html import write_report

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "cells/l1/r1.000-s0/judged.npz").write_bytes(b"garbage")
    paths = write_report(out)
    assert paths["figure3"].read_bytes().startswith(b"\x89PNG")
    assert f"{out}/cells/l1/r1.000-s0/judged.npz: cannot be read (ValueError); drawn as a gap" in capsys.readouterr().err


@pytest.mark.slow
def test_full_disk_names_the_file_keeps_finished_cells_and_the_rerun_resumes(finished_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    for cell in (out / "cells/l1").glob("r[01].*-s0.json"):  # keep r0.500 only: two cells to compute
        cell.unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    real_fdopen = os.fdopen

    class FullDisk:
        """A handle whose writes fail as on a full disk, for the file named ``victim``."""

        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    victims = []

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if victims and victims[0] in os.path.basename(name):
            return FullDisk(handle)
        return handle

    monkeypatch.setattr(jsonio.os, "fdopen", fdopen)
    run = ["run", SMOKE, "--methods", "l1", "--out", out, "--no-progress", "--threads", "1"]

    victims[:] = [".r1.000-s0.json."]  # the second cell to finish
    code, _, err = cli(capsys, *run)
    assert code == 2
    assert one_error_line(err) == (
        f"{out}/cells/l1/r1.000-s0.json: cannot write: no space left on device; finished cells are kept; free some space and rerun the same command to resume"
    )
    assert (out / "cells/l1/r0.000-s0.json").is_file() and not (out / "cells/l1/r1.000-s0.json").exists()
    assert not list(out.rglob("*.tmp"))

    victims[:] = [".figure3.png."]  # the disk fills while the report is written: nothing is replaced
    code, _, err = cli(capsys, *run)
    assert code == 2 and one_error_line(err).startswith(f"{out}/figure3.png: cannot write: no space left on device")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # old results, report and figures: still a set
    assert not list(out.rglob("*.tmp"))

    victims[:] = []
    code, _, err = cli(capsys, *run)
    assert code == 0, err
    results = read_json(out / "results.json")
    assert results["provenance"]["cells_reused"] == 3 and scores_of(results) == scores_of(read_json(finished_run / "results.json"))


# ---- the generated data set heals -----------------------------------------------------------------


@pytest.mark.slow
def test_a_damaged_generated_data_set_is_generated_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCHBIAS_CACHE", str(tmp_path / "cache"))
    run = ["run", SMOKE, "--methods", "l1", "--out", tmp_path / "run", "--no-progress", "--threads", "1"]
    assert cli(capsys, *run)[0] == 0
    first = read_json(tmp_path / "run" / "results.json")
    (root,) = (tmp_path / "cache" / "synthetic").iterdir()
    damaged = sorted(root.glob("*/*_t1.nii.gz"))[3]
    truncate(damaged)
    shutil.rmtree(tmp_path / "run")
    code, _, err = cli(capsys, *run)
    assert code == 0, err
    assert f"benchbias: warning: the generated data set {root} is damaged (case {damaged.parent.name}: {damaged}: cannot read" in err
    assert scores_of(read_json(tmp_path / "run" / "results.json")) == scores_of(first)

    (root / "synthetic.json").write_text("{")  # the metadata, written last, is how completeness is known
    shutil.rmtree(tmp_path / "run")
    code, _, err = cli(capsys, *run)
    assert code == 0 and f"benchbias: warning: the generated data set {root} is incomplete; generating it again" in err


# ---- property-based: mutated files never cause a traceback -----------------------------------------


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)


def paths_of(data, prefix=()):
    """Every key/index path into a parsed YAML or JSON document."""
    yield prefix
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield from paths_of(value, (*prefix, key))


@st.composite
def mutated_document(draw, document):
    """``document`` (parsed) with one value replaced, deleted, or an unknown key added somewhere."""
    import copy

    data = copy.deepcopy(document)
    path = draw(st.sampled_from(list(paths_of(data))[1:]))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace" or (action == "delete" and isinstance(parent, list) and len(parent) == 1):
        parent[path[-1]] = draw(ODD_VALUES)
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=6))] = draw(ODD_VALUES)
    else:
        parent.append(draw(ODD_VALUES))
    return data


@st.composite
def mutated_bytes(draw, content: bytes):
    """``content`` truncated, with random bytes spliced in, or with one byte changed."""
    at = draw(st.integers(0, len(content)))
    action = draw(st.sampled_from(["truncate", "splice", "flip"]))
    if action == "truncate":
        return content[:at]
    if action == "splice":
        return content[:at] + draw(st.binary(min_size=1, max_size=8)) + content[at:]
    at = min(at, len(content) - 1)
    return content[:at] + bytes([content[at] ^ draw(st.integers(1, 255))]) + content[at + 1 :]


class ReachedData(Exception):
    """Raised where a run would start preparing data: the benchmark file was accepted."""


def fuzz_settings(examples: int):
    """A fixed, derandomized set of examples in CI; BENCHBIAS_FUZZ=N searches N random ones per test."""
    wide = int(os.environ.get("BENCHBIAS_FUZZ", "0"))
    return settings(max_examples=wide or examples, deadline=None, derandomize=not wide, suppress_health_check=list(HealthCheck))


def run_and_check_exit(args, capsys) -> tuple[int | None, str]:
    """(exit code, stderr) of ``main(args)``; None when a run reached its data (a valid benchmark)."""
    try:
        code = main([str(a) for a in args])
    except ReachedData:
        code = None
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if code == 2:
        one_error_line(err)
    return code, err


SMOKE_DOCUMENT = __import__("yaml").safe_load(SMOKE.read_text())


@pytest.mark.slow
@fuzz_settings(120)
@given(content=st.one_of(mutated_bytes(SMOKE.read_bytes()), mutated_document(SMOKE_DOCUMENT).map(lambda d: __import__("yaml").safe_dump(d).encode())))
def test_fuzz_mutated_benchmark_files_give_one_line_or_a_valid_run(tmp_path_factory, capsys, monkeypatch, content):
    from benchbias.foundation.benchmark_files import load_benchmark
    from benchbias.foundation.errors import BenchbiasError
    from benchbias.run import runner

    def stop(*args, **kwargs):
        raise ReachedData

    monkeypatch.setattr(runner, "read_data", stop)
    path = tmp_path_factory.mktemp("fuzz") / "bench.yaml"
    path.write_bytes(content)
    try:
        load_benchmark(path)
        parses = True
    except BenchbiasError:
        parses = False
    code, err = run_and_check_exit(["run", path, "--out", path.parent / "out", "--no-progress"], capsys)
    assert code in (None, 2), (code, err)
    if not parses:
        assert code == 2 and one_error_line(err).startswith(f"{path}: ")


@pytest.fixture(scope="module")
def finished_results(finished_run):
    return finished_run / "results.json"


@pytest.mark.slow
@fuzz_settings(80)
@given(data=st.data())
def test_fuzz_mutated_results_files_give_one_line_or_a_verdict(finished_results, tmp_path_factory, capsys, data):
    from benchbias.records.validation import InvalidFile, load_results

    content = finished_results.read_bytes()
    mutated = data.draw(
        st.one_of(mutated_bytes(content), mutated_document(read_json(finished_results)).map(lambda d: json.dumps(d, indent=1).encode())), label="results"
    )
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "results.json"
    path.write_bytes(mutated)
    try:
        load_results(path)
        valid = True
    except InvalidFile:
        valid = False
    os.environ["BENCHBIAS_LEADERBOARDS"] = str(folder / "boards")  # a fresh board for each example
    for command in (["check", path, "--against", finished_results], ["leaderboard", "submit", path]):
        code, err = run_and_check_exit(command, capsys)
        if not valid:
            assert code == 2 and one_error_line(err).startswith(f"{path}: "), (command, err)
        else:
            assert code in (0, 1, 2), (command, code, err)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_json_files_read_back_exactly_with_short_containers_on_one_line(value):
    text = jsonio.dumps(value)
    assert json.loads(text) == value and text.endswith("\n")

    def fits_on_one_line(sub, depth):
        flat = json.dumps(sub)
        if isinstance(sub, (list, dict)) and 2 * depth + len(flat) <= jsonio.INLINE_WIDTH:
            assert flat in text, f"{flat} was split"
            return
        for child in sub.values() if isinstance(sub, dict) else sub if isinstance(sub, list) else ():
            fits_on_one_line(child, depth + 1)

    fits_on_one_line(value, 0)


def test_json_files_refuse_nan_and_keep_tuples_readable():
    with pytest.raises(ValueError):
        jsonio.dumps({"mae": [0.1, float("nan")]})
    long = {"cells": [(0.123456789, 0.987654321)] * 20}
    text = jsonio.dumps(long)
    assert json.loads(text) == {"cells": [[0.123456789, 0.987654321]] * 20}
    assert "    [0.123456789, 0.987654321]" in text, "each pair on its own line"
