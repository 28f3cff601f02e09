"""The report: figure2.png, figure3.png and report.html, written from a real smoke run."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
from benchbias.foundation.registry import load_registry
from benchbias.leaderboard.board import submit
from benchbias.records.validation import check_results
from benchbias.report.figures import mean_score_by_fraction
from benchbias.report.html import write_report
from benchbias.report.tables import Rows
from benchbias.run.options import RunOptions
from benchbias.run.pixel_check import pixel_error_warnings
from benchbias.run.runner import Run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "l1<script>$x_1$"  # HTML and matplotlib mathtext must both take it literally


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """The smoke benchmark restricted to l1 (one method, three fractions, one seed), run for real."""
    out = tmp_path_factory.mktemp("smoke-run")
    threads = torch.get_num_threads()
    # One thread: tiny networks gain nothing from more, and on a busy machine they lose a lot.
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("BENCHBIAS_CACHE", str(tmp_path_factory.getbasetemp() / "benchbias-cache"))
            bench = load_benchmark(find_benchmark("synthetic-smoke"))
            Run(bench, load_registry(), RunOptions(out=out, device="cpu", progress=False, methods=("l1",))).execute()
    finally:
        torch.set_num_threads(threads)
    return out


def copy_run(run_folder: Path, folder: Path) -> Path:
    shutil.copytree(run_folder, folder, ignore=shutil.ignore_patterns("*.png", "*.html"))
    return folder


def add_method_copy(folder: Path, source: str, name: str) -> dict:
    """A second method in results.json (and its example translations): ``source``'s cells under ``name``."""
    results = results_of(folder)
    method = json.loads(json.dumps(results["methods"][source]))
    for cell in method["cells"]:
        cell["method"] = name
    results["methods"][name] = method
    results["ranking"].append({**results["ranking"][0], "rank": 2, "method": name})
    shutil.copytree(folder / "cells" / source, folder / "cells" / name)
    (folder / "results.json").write_text(json.dumps(results))
    return results


@pytest.fixture(scope="module")
def one_method(run_folder, tmp_path_factory) -> dict[str, Path]:
    return write_report(copy_run(run_folder, tmp_path_factory.mktemp("one") / "run"))


@pytest.fixture(scope="module")
def two_methods(run_folder, tmp_path_factory) -> dict[str, Path]:
    """The smoke run with a second method whose name needs escaping."""
    folder = copy_run(run_folder, tmp_path_factory.mktemp("two") / "run")
    add_method_copy(folder, "l1", HOSTILE)
    return write_report(folder)


def image(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert len(data) > 5_000, f"{path.name} is suspiciously small"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def data_uris(page: str) -> list[bytes]:
    return [base64.b64decode(b64) for b64 in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def results_of(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def count_color(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: float = 12) -> int:
    return int((np.abs(pixels - np.array(rgb, dtype=np.float32)).max(axis=-1) < tolerance).sum())


# ---- the real run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_writes_the_figures_and_the_page_beside_results(two_methods):
    stand_in = "l1_script__x_1_-" + hashlib.sha256(b"l1<script>$x_1$").hexdigest()[:8]
    maps = {"hallucination-l1", f"hallucination-{stand_in}", "losses-l1", f"losses-{stand_in}"}
    assert set(two_methods) == {"figure2", "figure3", "html", *maps}, "a hallucination map and a loss figure per method (the benchmark has a segmenter)"
    folder = two_methods["html"].parent
    assert (folder / "results.json").is_file()
    assert {p.name for p in two_methods.values()} == {"figure2.png", "figure3.png", "report.html", *(m + ".png" for m in maps)}
    for path in two_methods.values():
        assert path.parent == folder and path.is_file() and path.stat().st_size > 0
    assert not list(folder.glob(".*.tmp")), "temporary files were left behind"
    for name in ("figure2", "figure3", *maps):
        assert image(two_methods[name]).std() > 10, f"{name} looks blank"


def test_figure2_draws_called_shares_in_red_and_green(two_methods):
    pixels = image(two_methods["figure2"])
    red, green = count_color(pixels, (0xD6, 0x2F, 0x2F)), count_color(pixels, (0x2E, 0x9E, 0x44))
    # Every bar is filled green and/or red to 100%: together they cover a large part of the figure.
    assert red + green > 0.1 * pixels.shape[0] * pixels.shape[1]
    assert (pixels.max(axis=-1) < 40).sum() > 500, "no black error line or text"


def test_figure3_outlines_the_tumor(two_methods):
    pixels = image(two_methods["figure3"])
    assert count_color(pixels, (0xFF, 0x30, 0x30), tolerance=40) > 50, "no red tumor contour"


def test_figure_sizes_follow_methods_and_fractions(one_method, two_methods):
    fig2_one, fig2_two = image(one_method["figure2"]), image(two_methods["figure2"])
    assert fig2_two.shape[1] > fig2_one.shape[1], "figure 2 has one column per method"
    assert fig2_two.shape[1] > fig2_two.shape[0], "two method columns make a wide figure"

    fig3_one, fig3_two = image(one_method["figure3"]), image(two_methods["figure3"])
    assert fig3_two.shape[0] > fig3_one.shape[0], "figure 3 has one row per method"
    assert fig3_two.shape[1] == fig3_one.shape[1]
    results = results_of(one_method["html"].parent)
    columns = len(results["benchmark"]["config"]["domains"]["target_fractions"]) + 2  # source | fractions | target
    for pixels, methods in ((fig3_one, 1), (fig3_two, 2)):
        grid_aspect = columns / (2 * methods)  # two examples, each a block of one row per method
        height, width = pixels.shape[:2]
        assert 0.5 * grid_aspect < width / height < 1.5 * grid_aspect, "figure 3 is a grid of square panels"


def test_html_is_self_contained_and_complete(two_methods):
    page = two_methods["html"].read_text()
    results = results_of(two_methods["html"].parent)

    maps = sorted(k for k in two_methods if k.startswith(("hallucination-", "losses-")))
    assert data_uris(page)[:2] == [two_methods["figure2"].read_bytes(), two_methods["figure3"].read_bytes()]
    assert sorted(data_uris(page)[2:]) == sorted(two_methods[k].read_bytes() for k in maps), "each method's hallucination map and losses are embedded"
    assert 'href="figure2.png"' in page and 'href="figure3.png"' in page
    assert "http://" not in page and "https://" not in page
    assert "synthetic-smoke" in page.split("</h1>")[0]
    assert f"{results['classifier']['holdout_accuracy']:.3f}" in page
    assert results["benchmark"]["config_hash"] in page and results["benchmark"]["protocol_hash"] in page
    assert results["dataset"]["fingerprint"] in page
    assert html.escape(results["ranking_rule"]) in page
    assert page.count("<table>") == 5, "the verdict, more scores, the judge's robustness table and one table per method"
    assert "Under the second judge" in page and "Segmentation judge" in page and "Second judge" in page
    assert "intensity x0.9" in page and results["classifier"]["sha256"] in page
    assert "<h3>l1</h3>" in page
    assert f"benchbias {results['methods']['l1']['origin']['version']}, file benchbias_plugins/l1.py" in page
    assert "impartial-cnn (benchbias " in page and "file benchbias_plugins/impartial_cnn.py" in page


def test_html_escapes_method_names(two_methods):
    page = two_methods["html"].read_text()
    assert "<script" not in page.lower()
    assert "<h3>l1&lt;script&gt;$x_1$</h3>" in page
    assert page.count("l1&lt;script&gt;$x_1$") >= 2, "in the leaderboard and as a section title"


# ---- degraded inputs -----------------------------------------------------------------------------


def test_null_scores_do_not_crash(run_folder, tmp_path):
    folder = copy_run(run_folder, tmp_path / "run")
    results = results_of(folder)
    for method in results["methods"].values():
        for cell in method["cells"]:
            cell["scores"] = {key: None for key in cell["scores"]}
        summary = method["summary"]
        for key in ("overall", "healthy_inputs", "tumor_inputs", "hallucination_trend", "erasure_trend"):
            summary[key] = {k: None for k in summary[key]}
        nothing = {name: None for name, value in summary.items() if value is None or isinstance(value, float)}
        summary.update(nothing)
        summary["ci95"] = {k: None for k in summary["ci95"]}
    for row in results["ranking"]:
        row.update({k: None for k in row if k not in ("rank", "method")})
    results["classifier"]["holdout_accuracy"] = None

    paths = write_report(folder, results)
    assert image(paths["figure2"]).std() > 0
    assert "n/a" in paths["html"].read_text()


def test_missing_cells_and_examples_leave_gaps(run_folder, one_method, tmp_path):
    folder = copy_run(run_folder, tmp_path / "run")
    shutil.rmtree(folder / "cells" / "l1" / "r0.500-s0")
    with_gap = image(write_report(folder)["figure3"])
    assert with_gap.std() > 10
    gap_gray = count_color(with_gap, (0xEE, 0xEE, 0xEE), tolerance=2)
    complete_gray = count_color(image(one_method["figure3"]), (0xEE, 0xEE, 0xEE), tolerance=2)
    assert gap_gray > complete_gray + 5000, "the missing cell is drawn as a gray gap in both examples"

    (folder / "examples.npz").unlink()
    paths = write_report(folder)
    assert image(paths["figure3"]).std() > 0
    assert len(data_uris(paths["html"].read_text())) == 3, "figures 2 and 3 and the loss curves; no hallucination maps"


def test_results_argument_overrides_results_json(run_folder, tmp_path):
    folder = copy_run(run_folder, tmp_path / "run")
    results = results_of(folder)
    results["benchmark"]["name"] = "renamed-in-memory"
    assert "renamed-in-memory" in write_report(folder, results)["html"].read_text()


# ---- helpers -------------------------------------------------------------------------------------


def test_seed_mean_skips_nulls_and_missing_fractions():
    method = {
        "cells": [
            {"ratio": 0.0, "seed": 0, "scores": {"mae": 0.2}},
            {"ratio": 0.0, "seed": 1, "scores": {"mae": 0.4}},
            {"ratio": 0.5, "seed": 0, "scores": {"mae": None}},
            {"ratio": 0.5, "seed": 1, "scores": {"mae": 0.1}},
            {"ratio": 1.0, "seed": 0, "scores": {"mae": None}},
        ]
    }
    means = mean_score_by_fraction(method, "mae", [0.0, 0.5, 1.0, 0.7])
    assert means[:2] == pytest.approx([0.3, 0.1])
    assert np.isnan(means[2]) and np.isnan(means[3])


def test_html_table_escapes_and_aligns():
    table = Rows(["n", "name"], [["1", "<b>&x"]], numeric={0}).html()
    assert '<th class="num">n</th><th>name</th>' in table
    assert '<td class="num">1</td><td>&lt;b&gt;&amp;x</td>' in table


def test_modalities_and_intensity_scale_come_from_the_results(run_folder, tmp_path):
    results = results_of(run_folder)
    assert results["dataset"]["intensity_scale"].startswith("each volume scaled to [0, 1] (0 = its minimum, the background; 1 = its 99.5th percentile)")
    folder = copy_run(run_folder, tmp_path / "t2")
    results["benchmark"]["config"]["dataset"].update(source="t2", target="flair")  # as a T2 -> FLAIR benchmark would record
    page = write_report(folder, results)["html"].read_text()
    assert "trained T2 &rarr; FLAIR" in page and "trained on real FLAIR slices" in page
    assert "FLAIR &rarr; T1" not in page
    from benchbias.run.results import INTENSITY_SCALES

    assert "whole data set" in INTENSITY_SCALES["dataset_max"] and "99.5th" not in INTENSITY_SCALES["dataset_max"]


# ---- the first screen, in a real browser -------------------------------------------------------------

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
PROBE = (
    "<script>document.body.setAttribute('data-scroll-width', document.documentElement.scrollWidth);"
    "document.body.setAttribute('data-inner-width', window.innerWidth);</script></body>"
)


def chromium(*args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: test machines and containers often run as root, where Chromium's sandbox refuses to start.
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,900", *args]
    try:
        # Without a D-Bus, Chromium waits out its connection attempts: minutes on a busy machine.
        return subprocess.run(command, capture_output=True, text=True, timeout=420, env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"})
    except subprocess.TimeoutExpired:
        pytest.skip("Chromium did not render the page within 420 s")


def test_the_verdict_sentences_come_before_every_figure(one_method):
    page = one_method["html"].read_text()
    results = results_of(one_method["html"].parent)
    first_figure, sentence = page.index("<figure>"), page.index("<strong>l1</strong> (rank 1 of 1): changed diagnoses")
    assert sentence < page.index("<table>") < first_figure
    assert page.index("Figure 2)") < page.index("<h2>The judges</h2>"), "the judges' hashes and robustness follow the figures"
    assert page.index(results["classifier"]["sha256"]) > first_figure
    assert "synthetic data generated by benchbias" in page and "not BraTS images" in page
    assert "changed diagnoses ↓" in page and "slope healthy in" in page.split("<h2>Classifier calls")[0], "the verdict's columns are defined"


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium to render the report in (apt-get install chromium)")
def test_the_report_fits_a_1400_px_screen_in_a_real_browser(one_method, tmp_path):
    """The page is rendered by headless Chromium: its first screen is not blank, and nothing (the
    per-cell tables had ~40 columns) makes the page wider than a 1400 px window."""
    report = one_method["html"]
    shot = tmp_path / "first-screen.png"
    result = chromium(f"--screenshot={shot}", report.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (900, 1400)
    assert pixels.std() > 10 and (pixels.max(axis=-1) < 60).mean() > 0.005, "the first screen shows text"

    probe = tmp_path / "probe.html"  # the report with a script that measures the page's width
    probe.write_text(report.read_text().replace("</body>", PROBE))
    dom = chromium("--dump-dom", probe.as_uri()).stdout
    widths = re.search(r'data-scroll-width="(\d+)" data-inner-width="(\d+)"', dom)
    assert widths, "the measuring script did not run"
    scroll_width, inner_width = map(int, widths.groups())
    assert inner_width == 1400
    assert scroll_width <= inner_width, f"the page is {scroll_width} px wide in a {inner_width} px window"


# ---- training losses and a pixel error far off -----------------------------------------------------


def test_cells_keep_their_loss_curves_and_the_report_draws_them(one_method):
    results = results_of(one_method["html"].parent)
    curves = [cell["loss_curve"] for cell in results["methods"]["l1"]["cells"]]
    steps = results["methods"]["l1"]["steps"]
    assert all(curve["steps"][-1] == steps and set(curve["terms"]) == {"l1"} for curve in curves)
    assert all(v is not None and v > 0 for curve in curves for v in curve["terms"]["l1"])
    pixels = image(one_method["losses-l1"])
    assert pixels.std() > 10
    page = one_method["html"].read_text()
    assert "<h2>Training losses</h2>" in page and "training losses of l1" in page


def test_results_without_loss_curves_still_render(run_folder, tmp_path):
    """Cells stored by an earlier benchbias have no loss curve: valid, and reported as such."""
    folder = copy_run(run_folder, tmp_path / "run")
    results = results_of(folder)
    for cell in results["methods"]["l1"]["cells"]:
        del cell["loss_curve"]
    check_results(results, "results.json")
    paths = write_report(folder, results)
    assert "losses-l1" not in paths and "No loss curves" in paths["html"].read_text()


def submitted_board(run_folder: Path, folder: Path) -> Path:
    results = results_of(run_folder)
    path, _ = submit(results, "results.json", folder=folder)
    return path


def test_a_pixel_error_far_above_the_baselines_is_flagged(run_folder, tmp_path):
    board = submitted_board(run_folder, tmp_path / "boards")
    results = results_of(run_folder)
    mae = results["methods"]["l1"]["summary"]["mae"]
    assert pixel_error_warnings(results, board) == {}, "as good as the baseline itself"
    results["methods"]["l1"]["summary"]["mae"] = 2.5 * mae
    warnings = pixel_error_warnings(results, board)["l1"]
    assert len(warnings) == 1 and "2.5x that of the worst baseline on the committed leaderboard (l1, " in warnings[0]
    other = json.loads(board.read_text())
    other["protocol_hash"] = "0" * 64
    board.write_text(json.dumps(other))
    assert pixel_error_warnings(results, board) == {}, "a board of another protocol (or an unreadable one) says nothing"
    assert pixel_error_warnings(results, tmp_path / "none.json") == {}


def test_a_run_warns_in_its_output_its_results_and_its_report(run_folder, tmp_path, monkeypatch, capsys):
    """The runner's path end to end: a factor below 1 flags the baseline against itself."""
    import benchbias.run.pixel_check as pixel_check

    boards = tmp_path / "boards"
    submitted_board(run_folder, boards)
    monkeypatch.setenv("BENCHBIAS_LEADERBOARDS", str(boards))
    monkeypatch.setattr(pixel_check, "MAE_FACTOR", 0.5)
    folder = copy_run(run_folder, tmp_path / "run")
    bench = load_benchmark(find_benchmark("synthetic-smoke"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the stored cells were computed: they are reused
    try:
        results = Run(bench, load_registry(), RunOptions(out=folder, device="cpu", progress=False, methods=("l1",))).execute()
    finally:
        torch.set_num_threads(threads)
    assert results["provenance"]["cells_run"] == 0
    assert "benchbias: warning: l1: its pixel error (MAE" in capsys.readouterr().err
    assert results_of(folder)["methods"]["l1"]["warnings"][0].startswith("its pixel error (MAE")
    glance = (folder / "report.html").read_text().split("<h2>")[0]  # before the first section
    assert 'class="warning">Warning: its pixel error' in glance


def test_provenance_names_the_machine(one_method):
    from benchbias.run.keys import training_code

    results = results_of(one_method["html"].parent)
    machine = results["provenance"]["machine"]
    assert set(machine) == {"cpu_model", "cpu_capability", "torch_threads", "training_code"}
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and machine["torch_threads"] >= 1
    assert machine["training_code"] == training_code()
    assert machine["cpu_model"] and machine["cpu_model"] in one_method["html"].read_text().split("<h2>Provenance</h2>")[1]
