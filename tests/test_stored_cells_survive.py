"""Moving files changes no result: a run stored by an earlier layout of benchbias is reused whole.

``tests/data/stored-smoke-run`` holds the cells of ``benchbias run synthetic-smoke --methods l1 --jobs
1 --threads 1 --device cpu`` (their JSON files and arrays, nothing else), made with the training code of
its last deliberate change (code identities: :mod:`benchbias.foundation.code_identity`). ``tests/data/code-identities.json``
holds the identities of that moment: the training core, the metrics, every baseline plugin and the
segmentation judge. A rerun into a copy must reuse every cell without training or rescoring one.
Regenerate both only when what the code computes changed on purpose: ``python tests/test_stored_cells_survive.py``.
"""

import json
import shutil
import sys

import torch
from support import REPO

from benchbias.cli import main
from benchbias.foundation.code_identity import module_sha256
from benchbias.foundation.jsonio import read_json
from benchbias.foundation.registry import code_sha256, load_registry
from benchbias.run.keys import SCORING_MODULE, core_code_sha256

STORED = REPO / "tests" / "data" / "stored-smoke-run"
IDENTITIES = REPO / "tests" / "data" / "code-identities.json"
RUN = ["run", "synthetic-smoke", "--methods", "l1", "--jobs", "1", "--threads", "1", "--device", "cpu", "--no-progress"]


def current_identities() -> dict:
    from benchbias.judges.segmenter import TumorSegmenter

    registry = load_registry()
    plugins = {
        f"{kind} {name}": registry.get(kind, name).code_sha256
        for kind in ("translator", "classifier", "metric")
        for name in registry.names(kind)
        if registry.get(kind, name).origin.distribution == "benchbias"  # the baselines, not whatever else is installed
    }
    return {"core": core_code_sha256(), "scoring": module_sha256(SCORING_MODULE), "segmenter": code_sha256(TumorSegmenter), "plugins": plugins}


def test_the_code_identities_are_those_the_stored_cells_were_made_with():
    assert current_identities() == read_json(IDENTITIES)


def test_a_stored_run_is_reused_without_training_or_rescoring_a_cell(tmp_path):
    out = shutil.copytree(STORED, tmp_path / "run")
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    threads = torch.get_num_threads()
    try:
        assert main([*RUN, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    provenance = read_json(out / "results.json")["provenance"]
    assert (provenance["cells_run"], provenance["cells_reused"], provenance["cells_rescored"]) == (0, 3, 0)
    assert {p: (out / p).read_bytes() for p in before} == before, "the stored cells are left as they were"


def regenerate() -> None:
    """Store the cells and identities of the code as it is now (see the module's docstring)."""
    scratch = REPO / "benchbias-runs" / "stored-smoke-run"
    shutil.rmtree(scratch, ignore_errors=True)
    torch.set_num_threads(1)
    if main([*RUN, "--out", str(scratch)]) != 0:
        sys.exit("the run failed")
    shutil.rmtree(STORED, ignore_errors=True)
    shutil.copytree(scratch / "cells", STORED / "cells")
    IDENTITIES.write_text(json.dumps(current_identities(), indent=2) + "\n")


if __name__ == "__main__":
    regenerate()
