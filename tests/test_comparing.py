"""Comparing one's own method with a baseline: ``--translator`` beside ``--methods``, a rerun with
fewer methods that keeps the others, and ``compare FILE:METHOD FILE:METHOD``; real CLI runs."""

import json

import pytest
from support import run_cli

IDENTITY = """
from benchbias.api import Translator, hookimpl


class Ident(Translator):
    name = "ident"
    paired = True

    def fit(self, data, ctx):
        for _ in ctx.loop():
            pass

    def translate(self, source):
        return source


@hookimpl
def register_translators(register):
    register(Ident)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "ident.py").write_text(IDENTITY)
    out = tmp_path_factory.mktemp("comparing") / "run"
    first = run_cli("run", "synthetic-smoke", "--methods", "l1", "--translator", "ident", "--plugin-dir", str(plugins), "--out", str(out), "--no-progress")
    return out, first


@pytest.mark.slow
def test_translator_runs_beside_the_methods_named(folder):
    out, first = folder
    assert first.returncode == 0, first.stderr
    assert sorted(json.loads((out / "results.json").read_text())["methods"]) == ["ident", "l1"]


@pytest.mark.slow
def test_a_rerun_with_fewer_methods_keeps_the_others_in_results_and_report(folder):
    out, first = folder
    assert first.returncode == 0, first.stderr
    before = json.loads((out / "results.json").read_text())
    again = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "kept from the folder's earlier results: ident" in again.stderr
    after = json.loads((out / "results.json").read_text())
    assert after["provenance"]["cells_run"] == 0
    assert after["methods"]["ident"] == before["methods"]["ident"]
    assert sorted(r["method"] for r in after["ranking"]) == ["ident", "l1"]
    assert "ident" in (out / "report.html").read_text()


@pytest.mark.slow
def test_compare_puts_one_method_beside_another(folder, tmp_path):
    out, first = folder
    assert first.returncode == 0, first.stderr
    paired = run_cli("compare", f"{out / 'results.json'}:l1", f"{out}:ident")
    assert paired.returncode == 0, paired.stderr
    assert "== A l1 vs B ident:" in paired.stdout and "B - A" in paired.stdout
    results = json.loads((out / "results.json").read_text())
    mae_l1, mae_ident = (results["methods"][m]["summary"]["mae"] for m in ("l1", "ident"))
    assert f"{mae_ident - mae_l1:+.4f}" in paired.stdout or f"{mae_ident - mae_l1:+.3f}" in paired.stdout
    same_name = run_cli("compare", str(out), str(out))  # the old form: every method of the same name
    assert same_name.returncode == 0 and "== l1:" in same_name.stdout and "== ident:" in same_name.stdout
    unknown = run_cli("compare", str(out), f"{out}:nosuch")
    assert unknown.returncode == 2
    lines = unknown.stderr.strip().splitlines()
    assert len(lines) == 1 and "method 'nosuch' is not in this results" in lines[0], unknown.stderr


def test_files_without_a_common_method_are_one_line_suggesting_a_pair(tmp_path):
    from pathlib import Path

    from benchbias.foundation.scoretable import ScoreTable
    from benchbias.leaderboard.compare import CheckError, Scored, method_pairs, split_method

    def scored(path, *names):
        return Scored(Path(path), "results", "b", "p", "d", "j", {n: [{"method": n, "version": "1"}] for n in names}, ScoreTable(()))

    with pytest.raises(CheckError, match=r"hold no method of the same name .*benchbias compare a.json:l1 b.json:mine"):
        method_pairs(scored("a.json", "l1"), scored("b.json", "mine"))
    assert method_pairs(scored("a.json", "l1", "x"), scored("b.json", "mine", "x")) == [("x", "x")]
    assert method_pairs(scored("a.json", "l1"), scored("b.json", "mine"), "l1", "mine") == [("l1", "mine")]
    assert method_pairs(scored("a.json", "l1"), scored("b.json", "l1", "mine"), "l1") == [("l1", "l1")]
    assert split_method("runs/a/results.json:l1") == (Path("runs/a/results.json"), "l1")
    assert split_method("runs/a/results.json") == (Path("runs/a/results.json"), None)
    odd = tmp_path / "odd:name.json"
    odd.write_text("{}")
    assert split_method(str(odd)) == (odd, None), "an existing file with a colon is a file"
