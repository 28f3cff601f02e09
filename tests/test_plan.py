"""``benchbias plan`` on a small folder in the BRATS2013 layout, shaped like the paper's problem: the
listed holdout patients are not the last sorted ids, and the target domain at r = 0 needs nearly all
healthy training slices, which only the notebook's overlapping draw can supply."""

import re

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
