"""What is committed must hold: leaderboards valid and matching their benchmark files, the documented
CI workflow calling real commands, and the example plugin matching the guide."""

import re
import shlex

import pytest
import yaml
from support import REPO

from benchbias.cli import build_parser
from benchbias.foundation.benchmark_files import load_benchmark
from benchbias.foundation.jsonio import read_json
from benchbias.judges.pinned import JudgeFiles
from benchbias.leaderboard.board import render
from benchbias.records.validation import load_leaderboard

EXAMPLE = REPO / "tests" / "example_plugin"
BOARDS = sorted((REPO / "leaderboards").glob("*.json")) + sorted((EXAMPLE / "reference").glob("*.json"))
BASELINES = {"cyclegan", "condgan", "l1", "gan", "pix2pix"}


def test_the_default_benchmark_has_a_committed_leaderboard_with_every_baseline():
    assert REPO / "leaderboards" / "synthetic-quick.json" in BOARDS
    board = load_leaderboard(REPO / "leaderboards" / "synthetic-quick.json")
    assert {e["method"] for e in board["entries"]} >= BASELINES
    for entry in board["entries"]:
        assert entry["origin"]["distribution"] == "benchbias", "baselines ship with benchbias"
        assert entry["git_commit"] and not entry["git_commit"].endswith("-dirty"), "made with committed code"


def test_the_example_plugin_has_a_reference_leaderboard_of_three_seeds():
    board = load_leaderboard(EXAMPLE / "reference" / "synthetic-quick.json")
    [entry] = board["entries"]
    assert (entry["method"], entry["version"], entry["seeds"]) == ("l1-ssim", "benchbias-l1-ssim 0.1.0", [0, 1, 2])
    assert entry["origin"]["source"] == "entry point"


@pytest.mark.parametrize("path", BOARDS, ids=[p.parent.name + "/" + p.stem for p in BOARDS])
def test_committed_leaderboard_validates_and_matches_its_benchmark(path):
    board = load_leaderboard(path)
    bench = load_benchmark(REPO / "benchmarks" / f"{board['benchmark']}.yaml")
    assert board["protocol_hash"] == bench.protocol_hash(), f"{path.name} was made under another protocol than the committed benchmark file"
    assert board["target_fractions"] == list(bench.domains.target_fractions)
    pinned = read_json(JudgeFiles.beside(REPO / "benchmarks" / f"{board['benchmark']}.yaml", board["benchmark"]).info)
    assert board["judge_sha256"] == pinned["sha256"], f"{path.name} was scored by another judge than the pinned one"
    if read_json(path)["schema"] == board["schema"]:  # a file of an older schema is upgraded on read and renders as today's
        assert path.with_suffix(".md").read_text() == render(board), "the .md must be the rendering of the .json"
    figure = path.with_suffix(".png").read_bytes()
    assert figure.startswith(b"\x89PNG\r\n\x1a\n") and len(figure) < 300_000


CI_GUIDE = REPO / "docs" / "guides" / "leaderboards-and-ci.md"


def documented_workflow() -> dict:
    guide = CI_GUIDE.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", guide, flags=re.S)
    workflows = [yaml.safe_load(b) for b in blocks if "jobs:" in b]
    assert len(workflows) == 1, f"{CI_GUIDE.name} shows one GitHub Actions workflow"
    return workflows[0]


def test_documented_workflow_runs_real_commands_on_committed_files():
    workflow = documented_workflow()
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    commands = [line for s in steps if "run" in s for line in s["run"].strip().splitlines() if line.startswith("benchbias ")]
    assert [c.split()[1] for c in commands] == ["run", "check"]
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])  # exits (fails the test) on an unknown option
        if args.command == "run":
            assert args.benchmark == "synthetic-quick" and args.translator == ["l1-ssim"]
        else:  # run in the example plugin's repository, which holds its reference leaderboard
            assert (EXAMPLE / args.against).is_file() and args.method == ["l1-ssim"]
    example = (REPO / "tests" / "example_plugin" / "benchbias_l1_ssim.py").read_text()
    assert 'name = "l1-ssim"' in example
