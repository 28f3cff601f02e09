"""benchbias leaderboard verify: an entry's sampled cells re-run from its pinned plugin in the sandbox,
on the public holdout and on a private one made from a secret, then signed; and the escapes it closes,
kept as canaries:

- a translator that ships the public holdout's real targets (oracle-lookup) reproduces its public
  scores and fails on the private holdout;
- a results file forged consistently (scores edited, summaries recomputed) validates and fails the
  re-run on the public holdout;
- a verified entry edited afterwards, or signed by a key the board does not trust, makes the board invalid;
- a plugin changed after its entry was made is not re-run.
"""

import json
import shutil
from pathlib import Path

import pytest
from support import run_cli

from benchbias.records.signatures import new_key_pair, sign
from benchbias.records.validation import score_table
from benchbias.scoring.summary import method_summary, per_fraction
from benchbias.verification import PRIVATE_HARDENING, hardened_first_judge, private_benchmark, sample_cells, season

SECRET = "a test secret, not the maintainers'"


@pytest.fixture(scope="module")
def board(oracle_runs, tmp_path_factory):
    """A board of the smoke benchmark with l1 and oracle-lookup from the shared isolated run (seed 0,
    conftest.py's ``oracle_runs``), a maintainers' key pair, and the environment every command of
    these tests runs with."""
    root = tmp_path_factory.mktemp("verify")
    cache = tmp_path_factory.getbasetemp() / "benchbias-cache"  # the tests' shared cache (conftest.py)
    env = {"BENCHBIAS_CACHE": str(cache), "BENCHBIAS_LEADERBOARDS": str(root / "boards"), "BENCHBIAS_HOLDOUT_SECRET": SECRET}
    results = oracle_runs[True] / "results.json"
    assert run_cli("leaderboard", "submit", str(results), "--methods", "l1", "oracle-lookup", env=env).returncode == 0
    assert run_cli("leaderboard", "keygen", str(root / "keys" / "maintainers.pem"), env=env).returncode == 0
    shutil.copy(root / "keys" / "maintainers.pub", root / "boards" / "maintainers.pub")
    return {
        "results": results, "plugins": oracle_runs["plugins"], "env": env,
        "path": root / "boards" / "synthetic-smoke.json", "key": root / "keys" / "maintainers.pem",
    }  # fmt: skip


def entries(path: Path) -> dict[str, dict]:
    return {e["method"]: e for e in json.loads(path.read_text())["entries"]}


def verify(board, method: str, *more: str, env: dict | None = None):
    return run_cli(
        "leaderboard", "verify", method, "--benchmark", "synthetic-smoke", "--cells", "1", "--plugin-dir", str(board["plugins"]), *more,
        env={**board["env"], **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def verified(board):
    """What a submission's CI does: verify every self-reported entry of the board, signing those that hold."""
    before = entries(board["path"])
    result = run_cli(
        "leaderboard", "verify", "--unverified", "--benchmark", "synthetic-smoke", "--cells", "1", "--plugin-dir", str(board["plugins"]),
        "--key", str(board["key"]), env=board["env"],
    )  # fmt: skip
    return {"result": result, "before": before, "after": entries(board["path"])}


@pytest.mark.slow
def test_an_honest_entry_is_verified_signed_and_ranked_apart(board, verified):
    result = verified["result"]
    assert result.returncode == 1, result.stdout + result.stderr  # one of the two entries does not hold
    assert "l1: verified and signed" in result.stdout
    entry = verified["after"]["l1"]
    record = entry["verification"]
    assert {k: v for k, v in entry.items() if k != "verification"} == verified["before"]["l1"]  # the entry itself is untouched
    assert entry["origin"]["code_sha256"]  # pinned by its classes' code identity too
    assert record["season"] == season(SECRET) and len(record["sampled_cells"]) == 1 and record["private_judges"]["classifier"]["sha256"]
    assert record["private_judges"]["classifier"]["adversarial_training"] == PRIVATE_HARDENING  # the private first judge is hardened
    cell = record["sampled_cells"][0]
    assert cell["public"]["mae"] == pytest.approx(cell["claimed"]["mae"], abs=record["tolerances"]["public"]["mae"])
    markdown = board["path"].with_suffix(".md").read_text()
    ranked_verified, self_reported = markdown.split("## Verified entries")[1].split("## Self-reported entries")
    assert "| l1 " in ranked_verified and "oracle-lookup" not in ranked_verified and "oracle-lookup" in self_reported
    assert run_cli("leaderboard", "validate", str(board["path"]), env=board["env"]).returncode == 0


@pytest.mark.slow
def test_a_translator_that_ships_the_public_holdout_fails_on_the_private_one(verified):
    claimed = verified["before"]["oracle-lookup"]["cells"]
    assert max(c["scores"]["mae"] for c in claimed) < 0.01  # its public scores: near perfect
    stderr = verified["result"].stderr
    assert "oracle-lookup (" in stderr and "not verified" in stderr
    problems = [line for line in stderr.splitlines() if "claimed" in line]
    assert problems and all("on the private holdout" in line for line in problems), stderr  # the public re-run reproduces
    assert any(" mae " in line for line in problems)
    assert "verification" not in verified["after"]["oracle-lookup"]


@pytest.mark.slow
def test_a_forged_entry_that_validates_fails_the_re_run(board, tmp_path):
    """Halve l1's MAE in every cell and recompute its summaries, as a forger would: the board validates,
    the re-run on the public holdout names the forged score."""
    boards = tmp_path / "boards"
    boards.mkdir()
    data = json.loads(board["path"].read_text())
    forge(data, "l1").pop("verification", None)
    (boards / "synthetic-smoke.json").write_text(json.dumps(data))
    env = {"BENCHBIAS_LEADERBOARDS": str(boards)}
    assert run_cli("leaderboard", "render", "synthetic-smoke", env={**board["env"], **env}).returncode == 0  # it validates
    result = verify(board, "l1", env=env)
    assert result.returncode == 1
    assert any(" mae " in line and "on the public holdout" in line for line in result.stderr.splitlines()), result.stderr


def forge(board_data: dict, method: str) -> dict:
    """Halve the entry's MAE in every cell and recompute its summaries with benchbias's own functions."""
    entry = next(e for e in board_data["entries"] if e["method"] == method)
    for cell in entry["cells"]:
        cell["scores"]["mae"] /= 2
    table = score_table(board_data, "forged")
    entry["summary"], entry["per_fraction"] = method_summary(entry["cells"], table), per_fraction(entry["cells"], table)
    return entry


def signed_board(board, tmp_path: Path, key: bytes | None = None, method: str = "l1") -> Path:
    """A copy of the board whose ``method`` entry is signed with ``key`` (a fresh one, trusted by the copy, by default)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    folder = tmp_path / "signed"
    folder.mkdir()
    private_pem, public_pem = new_key_pair()
    (folder / "maintainers.pub").write_bytes(public_pem)
    data = json.loads(board["path"].read_text())
    for other in data["entries"]:
        other.pop("verification", None)  # signed by the fixture's key, which this copy does not trust
    entry = next(e for e in data["entries"] if e["method"] == method)
    record = {"season": "s", "verified_at": "2026-01-01T00:00:00+00:00", "sampled_cells": [{"ratio": 0.0, "seed": 0}], "tolerances": {}, "private_judges": {}}
    entry["verification"] = sign(entry, record, load_pem_private_key(key or private_pem, None))
    path = folder / "synthetic-smoke.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.slow
def test_a_verified_entry_edited_afterwards_makes_the_board_invalid(board, tmp_path):
    path = signed_board(board, tmp_path)
    env = {**board["env"], "BENCHBIAS_LEADERBOARDS": str(path.parent)}
    assert run_cli("leaderboard", "render", "synthetic-smoke", env=env).returncode == 0  # signed by the trusted key: valid
    data = json.loads(path.read_text())
    forge(data, "l1")  # consistently: only the signature can tell
    path.write_text(json.dumps(data))
    result = run_cli("leaderboard", "validate", str(path), env=env)
    assert result.returncode != 0 and "verification" in result.stderr and "does not match" in result.stderr


@pytest.mark.slow
def test_a_signature_by_a_key_the_board_does_not_trust_makes_it_invalid(board, tmp_path):
    other, _ = new_key_pair()
    path = signed_board(board, tmp_path, key=other)
    result = run_cli("leaderboard", "validate", str(path), env=board["env"])
    assert result.returncode != 0 and "not in maintainers.pub" in result.stderr


@pytest.mark.slow
def test_a_plugin_changed_after_its_entry_is_not_re_run(board, tmp_path):
    changed = tmp_path / "plugins"
    shutil.copytree(board["plugins"], changed)
    (changed / "lookup.py").write_text((changed / "lookup.py").read_text() + "\n# changed\n")
    result = run_cli(
        "leaderboard", "verify", "oracle-lookup", "--benchmark", "synthetic-smoke", "--plugin-dir", str(changed), env=board["env"]
    )  # fmt: skip
    assert result.returncode != 0 and "sha256" in result.stderr and "the installed one has" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_secret_is_one_line(tmp_path):
    result = run_cli("leaderboard", "verify", "l1", env={"BENCHBIAS_HOLDOUT_SECRET": "", "BENCHBIAS_LEADERBOARDS": str(tmp_path)})
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1


def test_the_private_holdout_and_the_sample_come_from_the_secret():
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark

    bench = load_benchmark(find_benchmark("synthetic-quick"))
    one, two = private_benchmark(bench, SECRET), private_benchmark(bench, SECRET + "!")
    assert one.dataset.synthetic.seed != bench.dataset.synthetic.seed and one.dataset.synthetic.seed != two.dataset.synthetic.seed
    assert one.split.seed != bench.split.seed and private_benchmark(bench, SECRET) == one  # the same secret, the same holdout
    assert season(SECRET) != season(SECRET + "!") and SECRET not in season(SECRET)
    entry = {"cells": [{"ratio": r / 10, "seed": s, "scores": {}} for r in range(11) for s in range(3)]}
    picked = sample_cells(entry, SECRET, 3)
    assert len(picked) == 3 and picked == sample_cells(entry, SECRET, 3)
    assert any(sample_cells(entry, SECRET + str(i), 3) != picked for i in range(5))
    assert len(sample_cells(entry, SECRET, None)) == 33


def test_the_private_first_judge_is_trained_against_gradient_attacks_where_its_plugin_can_be():
    """The private judges' weights are nobody's: hardening the first of them makes an attack on the
    public judges carry over less (docs/concepts/judges.md). A plugin without adversarial training is
    left as it is, and the public benchmark is never changed."""
    from types import SimpleNamespace

    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.registry import load_registry

    bench = load_benchmark(find_benchmark("synthetic-quick"))
    private = private_benchmark(bench, SECRET)
    hardened = hardened_first_judge(private, load_registry())
    assert hardened.classifier.params == {**bench.classifier.params, **PRIVATE_HARDENING}
    assert PRIVATE_HARDENING["adversarial_eps"] > 0 and "adversarial_eps" not in bench.classifier.params
    assert hardened.protocol_hash() != private.protocol_hash()  # its own cache entry, trained for the recipe
    without_it = SimpleNamespace(get=lambda kind, name: SimpleNamespace(cls=type("Plain", (), {"params": {"lr": None}})))
    assert hardened_first_judge(private, without_it) == private


@pytest.mark.slow
def test_a_verified_entry_replaced_by_a_new_submission_is_self_reported_again(board, tmp_path):
    """``submit --replace`` over a verified entry: the new entry carries no verification, so the board
    ranks it with the self-reported ones, whatever its scores. (A shipped baseline's entry is never
    replaced at all.)"""
    path = signed_board(board, tmp_path, method="oracle-lookup")
    env = {**board["env"], "BENCHBIAS_LEADERBOARDS": str(path.parent)}
    assert "verification" in entries(path)["oracle-lookup"]
    result = run_cli("leaderboard", "submit", str(board["results"]), "--methods", "oracle-lookup", "--replace", env=env)
    assert result.returncode == 0, result.stderr
    assert "verification" not in entries(path)["oracle-lookup"]
    self_reported = path.with_suffix(".md").read_text().split("## Self-reported entries")[1]
    assert "| oracle-lookup " in self_reported
    refused = run_cli("leaderboard", "submit", str(board["results"]), "--methods", "l1", "--replace", env=env)
    assert refused.returncode != 0 and "baseline shipped with benchbias" in refused.stderr
