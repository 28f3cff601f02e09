"""benchbias rescore: a run folder's stored translations scored again by benchbias's own judges and
metrics, compared with what its results.json claims; a consistently forged results file fails."""

import json
import shutil

import pytest
from support import run_cli

from benchbias.records.validation import load_results, score_table
from benchbias.scoring.summary import method_summary, per_fraction


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rescore") / "run"
    cache = tmp_path_factory.getbasetemp() / "benchbias-cache"  # the tests' shared cache (conftest.py)
    result = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(out), "--no-progress", env={"BENCHBIAS_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_an_untouched_run_rescores_to_its_own_scores(smoke_run):
    result = run_cli("rescore", str(smoke_run))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 cells scored again" in result.stdout and "every score as results.json says" in result.stdout


@pytest.mark.slow
def test_a_forged_results_file_that_validates_fails_rescoring(smoke_run, tmp_path):
    """Halve every cell's MAE and recompute the summaries with benchbias's own functions, as a forger
    would: the file still validates, and rescoring its translations names every forged score."""
    forged = tmp_path / "forged"
    shutil.copytree(smoke_run, forged)
    data = json.loads((forged / "results.json").read_text())
    method = data["methods"]["l1"]
    for cell in method["cells"]:
        cell["scores"]["mae"] /= 2
    table = score_table(data, "forged")
    method["summary"], method["per_fraction"] = method_summary(method["cells"], table), per_fraction(method["cells"], table)
    (forged / "results.json").write_text(json.dumps(data))
    load_results(forged / "results.json")  # validates: summaries recomputed from the edited cells

    result = run_cli("rescore", str(forged))
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if " mae " in line]
    assert len(lines) == 3 and all("in the results" in line and "rescored" in line for line in lines), result.stdout
    assert "rescore FAILED" in result.stdout
