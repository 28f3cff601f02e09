"""The docs site stays true to the code: the generated reference pages match what the code generates
now (drift), the example plugins the guides include load and run, and the site builds with
``mkdocs build --strict``."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import REPO

DOCS = REPO / "docs"


def load_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def registered(module, hook: str) -> list[type]:
    classes: list[type] = []
    getattr(module, hook)(classes.append)
    return classes


def test_reference_pages_match_the_code():
    generator = load_file(DOCS / "gen_reference.py")
    pages = generator.generate()
    assert {p.name for p in pages} == {p.name for p in (DOCS / "reference").glob("*.md")}, "a reference page is not generated, or not committed"
    diffs = generator.drift(pages)
    assert not diffs, "the reference drifted from the code: run `python docs/gen_reference.py` and commit docs/reference/\n" + "\n".join(diffs)


@pytest.mark.parametrize(
    "file, declared, params",
    [
        ("unet_l1.py", {"batch_size", "lr", "channels"}, {"batch_size": 2, "channels": 4}),
        ("unet_lsgan.py", {"batch_size", "lr", "disc_filters", "gan_mode", "channels", "lambda_l1"}, {"batch_size": 2, "channels": 4, "disc_filters": 4}),
    ],
)
def test_the_example_translators_declare_only_their_parameters_train_and_translate(tmp_path, file, declared, params):
    module = load_file(DOCS / "examples" / file)
    [cls] = registered(module, "register_translators")
    from benchbias.api import PairedSlices, ParamError

    assert set(cls.params) == declared, "only what the method uses"
    with pytest.raises(ParamError, match="unknown parameter 'blocks'"):
        cls(blocks=1)  # the ResNet generator's: not a parameter of a U-Net
    translator = cls(**params)
    assert set(translator.hparams) == declared and translator.hparams["beta1"] == 0.5, "a shared setting left out keeps its default"
    images = torch.rand(4, 1, 32, 32) * 2 - 1
    reported = []
    ctx = module.TrainContext(seed=0, device=torch.device("cpu"), steps=2, workdir=tmp_path, log_every=1, on_step=lambda step, losses: reported.append(losses))
    translator.fit(PairedSlices(images, images.flip(-1)), ctx)
    out = translator.translate(images)
    assert out.shape == images.shape and out.abs().max() <= 1
    assert len(reported) == 2 and all(v == v and v >= 0 for losses in reported for v in losses.values())


@pytest.mark.slow
def test_the_guide_s_plugin_dir_command_runs_the_examples(tmp_path):
    """The plugin guide's command, as a user types it: both examples from the docs folder, trained,
    judged and reported, each cell with its loss curve and only the declared parameters."""
    from support import run_cli

    out = tmp_path / "run"
    run = run_cli(
        "run", "synthetic-smoke", "--plugin-dir", str(DOCS / "examples"), "--translator", "unet-l1", "--translator", "unet-lsgan",
        "--param", "channels=4", "--param", "batch_size=4", "--out", str(out), "--no-progress", "--jobs", "1",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = __import__("json").loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"unet-l1", "unet-lsgan"}
    assert set(results["methods"]["unet-l1"]["params"]) == {"batch_size", "lr", "channels"}
    assert set(results["methods"]["unet-lsgan"]["cells"][0]["loss_curve"]["terms"]) == {"g", "gan", "l1", "d"}
    assert (out / "losses-unet-lsgan.png").is_file() and "training losses, first -> last" in run.stdout


def test_the_example_metric_scores_every_slice():
    module = load_file(DOCS / "examples" / "brightness_shift.py")
    [cls] = registered(module, "register_metrics")
    n = 3
    real = torch.full((n, 1, 8, 8), 0.5)
    evidence = module.Evidence(
        source=real,
        translated=real + 0.1,
        real=real,
        tumor_mask=torch.zeros(n, 1, 8, 8, dtype=torch.bool),
        source_is_tumor=np.zeros(n, dtype=bool),
        brain_fraction=np.ones(n),
        out_of_range=np.zeros(n),
        p_tumor=np.zeros(n),
        p_tumor_real=np.zeros(n),
    )
    values = cls().compute(evidence)
    assert set(values) == {s.name for s in cls.scores}
    assert np.allclose(values["brightness_shift"], 0.1)


def test_the_docs_site_builds_strictly(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[test]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "index.html").is_file()
    for page in ("cli", "benchmark-file", "results-schema", "leaderboard-schema", "scores", "plugin-api"):
        assert (site / "reference" / page / "index.html").is_file(), page
    api = (site / "reference" / "plugin-api" / "index.html").read_text(encoding="utf-8")
    assert "NetworkTranslator" in api and "register_translators" in api, "mkdocstrings rendered no docstrings"
