"""``benchbias plan`` on a small folder in the BRATS2013 layout, shaped like the paper's problem: the
listed holdout patients are not the last sorted ids, and the target domain at r = 0 needs nearly all
healthy training slices, which only the notebook's overlapping draw can supply."""

import re
import shutil

import pytest
import yaml
from support import REPO
from test_layouts import write_brats2013

from benchbias.cli import main

CASES = ["HG/0001", "HG/0002", "HG/0003", "LG/0001", "LG/0002", "LG/0003"]
HOLDOUT = ["HG/0002", "LG/0001"]  # as in the paper: not the last ids in sorted order


def benchmark(tmp_path, data, overlap: bool):
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw.update(name="paper-like", training={"steps": 5}, seeds=[0, 1])
    raw["dataset"] = {"path": str(data), "layout": "brats2013", "source": "flair", "target": "t1"}
    raw["slices"] = {"image_size": 24, "normalization": "dataset_max", "drop_ambiguous": False}
    raw["split"] = {"holdout_subjects": HOLDOUT}
    raw["domains"] = {"source_size": 12, "target_size": 12, "holdout_size": 6, "target_fractions": [0.0, 0.5, 1.0], "target_overlaps_source": overlap}
    raw["methods"] = {"cyclegan": raw["methods"]["cyclegan"], "l1": raw["methods"]["l1"]}
    path = tmp_path / f"paper-like-{overlap}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_plan_reports_split_domains_cells_and_compute(tmp_path, capsys):
    for case in CASES:
        write_brats2013(tmp_path / "Synthetic_Data" / case, n4=False)
    data = tmp_path / "Synthetic_Data"

    code = main(["plan", str(benchmark(tmp_path, data, overlap=True)), "--measure-steps", "1", "--threads", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    train_row = next(line for line in lines if line.startswith("train "))
    tumor, healthy = map(int, train_row.split()[-2:])
    assert train_row.split()[1] == "4" and tumor + healthy > 0
    assert "holdout subjects: HG/0002, LG/0001" in out and "train subjects:   HG/0001, HG/0003, LG/0002, LG/0003" in out
    assert "source 12 at 0.5 tumor (unpaired), target / pairs 12; target may overlap the source" in out
    assert re.search(r"^0\s+6 \+ 6\s+0 \+ 12\s+yes$", out, re.MULTILINE) and re.search(r"^1\s+6 \+ 6\s+12 \+ 0\s+yes$", out, re.MULTILINE)
    assert "cells: 2 methods x 3 fractions x 2 seeds = 12" in out
    assert "slices: 24 x 24 (rows x columns); translators see them on [-1, 1]" in out
    assert f"judge: impartial-cnn, 40 steps on {tumor} tumor + {healthy} healthy real t1 slices (every training subject's slices), read at 24 x 24" in out
    cyclegan = next(line for line in lines if line.startswith("cyclegan ")).split()
    l1 = next(line for line in lines if line.startswith("l1 ")).split()
    assert float(cyclegan[1]) > float(l1[1]) > 0  # GFLOP per step: two generators and two discriminators cost more
    assert (cyclegan[2], cyclegan[3]) == ("5", "6")  # steps, cells of the method

    # The paper's judge: the real targets of fractions 0 and 1, read at another size; slices not square.
    paper_like = benchmark(tmp_path, data, overlap=True)
    raw = yaml.safe_load(paper_like.read_text())
    raw["slices"].update(image_size=[16, 32], network_max=0.392157)
    raw["classifier"].update(population="fraction_extremes", image_size=[20, 40])
    paper_like.write_text(yaml.safe_dump(raw))
    code = main(["plan", str(paper_like), "--measure-steps", "0", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "slices: 16 x 32 (rows x columns); translators see them on [-1, -0.216]" in out
    assert "judge: impartial-cnn, 40 steps on 12 tumor + 12 healthy real t1 slices (the target domains at fractions 0 and 1), read at 20 x 40" in out

    # Disjoint domains cannot be drawn from this data at r = 0: exit 2, one line naming the fraction and the shortfall.
    code = main(["plan", str(benchmark(tmp_path, data, overlap=False)), "--measure-steps", "0", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2 and "NO: " in out and "PFLOP" not in out
    message = err.strip()
    assert len(message.splitlines()) == 1
    needed_healthy = 6 + 12
    assert message == (
        f"benchbias: error: domains.target_size: at target fraction 0 the protocol needs 6 tumor + {needed_healthy} healthy training slices "
        f"(source + target, disjoint) but has {tumor} + {healthy}: {needed_healthy - healthy} healthy short"
    ), message


# ---- the compute estimate: the run's programs on the run's workers ----------------------------


def test_wall_time_spreads_programs_over_workers_longest_first():
    from benchbias.run.plan import Cost, wall_seconds

    single = Cost("a", 1e9, 0.1, 10, (1, 1, 1))  # three programs of one model: 1 s each
    stacked = Cost("b", 2e9, 0.4, 10, (2, 1), together=2)  # a program of two models (4 s) and one of one (2 s)
    assert single.program_seconds() == pytest.approx([1.0, 1.0, 1.0])
    assert stacked.program_seconds() == pytest.approx([4.0, 2.0])
    assert single.seconds + stacked.seconds == pytest.approx(9.0) and stacked.cells == 3
    assert stacked.total_flops == pytest.approx(2e9 * 10 * 3)
    assert wall_seconds([single, stacked], 1) == pytest.approx(9.0)
    assert wall_seconds([single, stacked], 2) == pytest.approx(5.0)  # 4 | 2+1+1, then the last 1 on the first free
    assert wall_seconds([single, stacked], 8) == pytest.approx(4.0), "never shorter than the longest program"


def test_the_estimate_never_reads_zero_or_nan():
    from benchbias.run.plan import Cost, cost_lines, readable

    tiny = Cost("fast", 10.0, 1e-6, 1, (1,))
    text = "\n".join(cost_lines([tiny], 1, "cpu"))
    assert "nan" not in text.lower() and not re.search(r"(?<![\d.e-])0s\b", text), text
    assert readable(0.004) == "0.004s" and readable(3.0) == "3s" and readable(600) == "10m00s"


def test_plan_counts_programs_and_workers_and_leaves_optional_methods_out(tmp_path, capsys, monkeypatch):
    from benchbias.run import plan

    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["training"] = {"steps": 10, "models_per_program": 2}
    raw["methods"] = {"l1": raw["methods"]["l1"], "pix2pix": {**raw["methods"]["pix2pix"], "optional": True}}
    raw["seeds"] = [0, 1]
    path = tmp_path / "stacked.yaml"
    path.write_text(yaml.safe_dump(raw))
    timed = []

    def fake_step(translator, image_size, device, steps, together=1, warmup=2, amp=True):
        timed.append((translator.name, steps, together, __import__("torch").get_num_threads()))
        return 0.05 * together  # a fake time per step: 50 ms per model

    monkeypatch.setattr(plan, "measure_step", fake_step)
    code = main(["plan", str(path), "--jobs", "2", "--measure-steps", "3", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    # l1 trains models together: fractions [0, 0.5] and [1] per seed, two seeds: programs of 2, 1, 2, 1 models
    assert timed == [("l1", 3, 2, 1)], "timed once, as a program of two models, with the worker's one thread"
    row = next(line for line in out.splitlines() if line.startswith("l1 ")).split()
    assert row[2:5] == ["10", "6", "4"], row  # steps, cells, programs
    # programs of 2 models take 10 x 0.1 s = 1 s, of 1 model 0.5 s; on 2 workers: 1 + 0.5 each
    assert "estimated wall time of training: 1.5s on 2 workers" in out, out
    assert "not planned: pix2pix (optional or not named; name them with --methods)" in out
    assert "cells: 1 methods x 3 fractions x 2 seeds = 6" in out

    timed.clear()
    code = main(["plan", str(path), "--methods", "l1", "pix2pix", "--jobs", "1", "--threads", "1", "--measure-steps", "3", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [name for name, *_ in timed] == ["l1", "pix2pix"]
    assert "estimated wall time of training: 6s on 1 worker " in out, out  # l1 3 s + pix2pix 3 s, one after another


# ---- the paper benchmarks on a BRATS2013 folder with the paper's 50 case ids ------------------


@pytest.fixture(scope="module")
def paper_cases(tmp_path_factory):
    """The 50 simulated BRATS2013 case ids of the paper, each a small synthetic case, and both paper
    benchmarks at a small slice size (geometry only; every other setting as committed)."""
    root = tmp_path_factory.mktemp("brats2013")
    order = yaml.safe_load((REPO / "benchmarks" / "brats2013-paper.yaml").read_text())["split"]["subject_order"]
    for i, case in enumerate(order):
        write_brats2013(root / "Synthetic_Data" / case, n4=False, start=100 + 20 * i)
    files = {}
    for name in ("brats2013-paper", "brats2013-paper-code"):
        raw = yaml.safe_load((REPO / "benchmarks" / f"{name}.yaml").read_text())
        raw["slices"]["image_size"], raw["classifier"]["image_size"] = [32, 64], [16, 32]
        files[name] = root / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump(raw, sort_keys=False))
    return root / "Synthetic_Data", files


def test_plan_answers_before_it_measures_and_checks_the_data_against_the_papers_counts(paper_cases, capsys):
    data, files = paper_cases
    code = main(["plan", str(files["brats2013-paper"]), "--data", str(data), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "300 slices of 50 subjects" in out and "holdout subjects: HG/0001, HG/0003" in out
    # Drawn with replacement, each slice kept once: the slices kept and, in brackets, the draws.
    assert "drawn with replacement, each slice kept once: tumor + healthy slices of seed 0 (draws in brackets)" in out
    assert re.search(r"^0\s+90 \+ \d+ \(350 \+ 350\)\s+0 \+ 90 \(0 \+ 700\)\s+yes$", out, re.MULTILINE), out
    assert "precision on CUDA: float32, TF32 off (pinned by the benchmark); on the CPU: float32" in out
    assert re.search(r"^memory: [\d.]+ MB of prepared slices", out, re.MULTILINE) and re.search(r"^disk: [\d.]+ kB of translations per cell", out, re.MULTILINE)
    # The notebook's counts beside this data's: a folder that is not the paper's data is flagged.
    assert re.search(r"^slices kept\s+3540\s+300\s+DIFFERS$", out, re.MULTILINE), out
    assert re.search(r"^target domain slices per fraction\s+459 495 532 557 582 607 603 603 592 574 549\s+90 ", out, re.MULTILINE), out
    assert "WARNING: this preparation differs from the reference in: slices kept," in out
    assert "compute: not measured" in out and "GFLOP/step" not in out

    # Exact draws of 300 holdout slices cannot come from this folder: the split and the counts first, then one line.
    code = main(["plan", str(files["brats2013-paper-code"]), "--data", str(data), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2
    assert re.search(r"^holdout subjects\s+20\s+60\s+60$", out, re.MULTILINE) and "holdout set" not in out
    assert re.search(r"^train: healthy slices\s+704\s+90\s+DIFFERS$", out, re.MULTILINE), out
    assert err.strip() == "benchbias: error: domains.holdout_size: asks for 159 tumor + 141 healthy slices, but only 60 tumor + 60 healthy are available"


def test_a_matching_preparation_says_so(paper_cases, capsys, tmp_path):
    data, files = paper_cases
    raw = yaml.safe_load(files["brats2013-paper"].read_text())
    raw["reference"] = {"slices": 300, "tumor_slices": 150, "train_tumor": 90, "train_healthy": 90, "judge_slices": 180}
    path = tmp_path / "matching.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    code = main(["plan", str(path), "--data", str(data), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "this preparation matches every reference count" in out and "DIFFERS" not in out


def test_plan_names_cases_whose_headers_put_the_half_elsewhere_than_the_notebooks_crop(paper_cases, capsys, tmp_path):
    data, files = paper_cases
    copy = tmp_path / "Synthetic_Data"
    shutil.copytree(data, copy)
    for path in (copy / "HG" / "0018").rglob("*.mha"):  # a first axis that runs the other way
        blob = path.read_bytes()
        path.write_bytes(blob.replace(b"TransformMatrix = 1 0 0 0 1 0 0 0 1", b"TransformMatrix = -1 0 0 0 1 0 0 0 1", 1))
    code = main(["plan", str(files["brats2013-paper"]), "--data", str(copy), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (
        "WARNING: half: in 1 case(s) the patient's left half is not the upper half of the file's first axis as stored "
        "(other headers than the paper's data): HG/0018"
    ) in out
    code = main(["plan", str(files["brats2013-paper"]), "--data", str(data), "--no-progress"])
    out, err = capsys.readouterr()
    assert "half: the patient's left half; in every case the upper half of the file's first axis as stored (headers checked)" in out


def test_slices_prepared_before_the_header_check_say_it_was_not_made():
    from benchbias.run.data_checks import half_line

    assert half_line("left", None) == ("half: the patient's left half; headers not checked (slices prepared before the check: prepare them again to check)")
    assert half_line("left", ()).endswith("as stored (headers checked)")
