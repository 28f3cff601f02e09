"""Training steps per second per method (quick and paper scale), holdout translation +
classification throughput, scoring one cell, and MONAI loading of one real-size case."""

from pathlib import Path

import pytest
import torch

from benchbias.data.cases import load_case_slices
from benchbias.data.synthetic_files import write_dataset
from benchbias.foundation.config import SliceConfig, SynthSpec
from benchbias.foundation.contract import TrainContext
from benchbias.foundation.registry import load_registry

METHODS = ["l1", "cyclegan", "condgan", "gan", "pix2pix"]
SCALES = {
    # synthetic-quick's settings
    "quick": {"size": 32, "params": {"filters": 8, "blocks": 2, "batch_size": 4}, "disc": {"disc_filters": 8}},
    # the CycleGAN reference code's defaults (the paper states no sizes): 256 px, 64 filters, 9 residual blocks, batch 1
    "paper": {"size": 256, "params": {"filters": 64, "blocks": 9, "batch_size": 1}, "disc": {}},
}
REGISTRY = load_registry()


def built_translator(method: str, scale: str, tmp_path: Path):
    spec = SCALES[scale]
    cls = REGISTRY.get("translator", method).cls
    params = dict(spec["params"])
    params.update({k: v for k, v in spec["disc"].items() if k in cls.params})
    translator = cls(**params)
    translator.device = torch.device("cpu")
    translator.build()
    n, size = max(2 * params["batch_size"], 4), spec["size"]
    images = torch.rand(n, 1, size, size) * 2 - 1
    ctx = TrainContext(seed=0, device=torch.device("cpu"), steps=1, workdir=tmp_path)
    return translator, images, ctx, params["batch_size"]


@pytest.mark.parametrize("scale", ["quick", "paper"])
@pytest.mark.parametrize("method", METHODS)
def test_training_step(benchmark, method, scale, tmp_path):
    translator, images, ctx, batch = built_translator(method, scale, tmp_path)
    source, target = images[:batch], images[batch : 2 * batch]
    rounds = 20 if scale == "quick" else 3
    benchmark.pedantic(translator.training_step, args=(source, target, ctx), rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["steps_per_second"] = 1.0 / benchmark.stats.stats.mean
    benchmark.extra_info["threads"] = torch.get_num_threads()


@pytest.mark.parametrize("models", [1, 6, 11])
@pytest.mark.parametrize("method", ["l1", "condgan", "cyclegan"])
def test_training_models_together(benchmark, method, models, tmp_path):
    """Quick-scale training of ``models`` fractions' models as one program (fit_together; 1: fit
    alone), 20 steps of batch 4 over 400 slices each, at one thread as a run's workers train. The
    figure to compare is ``ms_per_model_step``: its ratio between 1 and 11 is the fused program's gain."""
    from benchbias.foundation.contract import PairedSlices, UnpairedDomains

    torch.set_num_threads(1)
    cls = REGISTRY.get("translator", method).cls
    params = {"filters": 8, "blocks": 2, "batch_size": 4, **({"disc_filters": 8} if "disc_filters" in cls.params else {})}
    images = torch.rand(2, 400, 1, 32, 32) * 2 - 1
    data = (PairedSlices if cls.paired else UnpairedDomains)(images[0], images[1])
    steps = 20

    def contexts():
        return [TrainContext(seed=0, device=torch.device("cpu"), steps=steps, workdir=tmp_path) for _ in range(models)]

    def train():
        translator = cls(**params)
        if models == 1:
            translator.fit(data, contexts()[0])
        else:
            translator.fit_together([data] * models, contexts())

    benchmark.pedantic(train, rounds=3, warmup_rounds=1)
    benchmark.extra_info["ms_per_model_step"] = 1000 * benchmark.stats.stats.min / (steps * models)
    benchmark.extra_info["threads"] = torch.get_num_threads()


@pytest.mark.parametrize("method", ["l1", "cyclegan"])
def test_holdout_translation_and_classification(benchmark, method, tmp_path):
    """Translate and classify a 200-slice holdout at quick scale."""
    translator, _, _, _ = built_translator(method, "quick", tmp_path)
    classifier = REGISTRY.get("classifier", "impartial-cnn").cls(channels=16)
    ctx = TrainContext(seed=0, device=torch.device("cpu"), steps=1, workdir=tmp_path)
    holdout = torch.rand(200, 1, 32, 32) * 2 - 1
    classifier.fit(holdout[:8], torch.tensor([0, 1] * 4), ctx)

    def translate_and_classify():
        translated = torch.cat([translator.translate(b) for b in holdout.split(64)])
        return classifier.predict_proba(translated)

    probabilities = benchmark(translate_and_classify)
    assert probabilities.shape == (200,)
    benchmark.extra_info["slices_per_second"] = 200 / benchmark.stats.stats.mean


def test_scoring_one_cell(benchmark):
    """Every built-in metric on a 200-slice holdout at quick scale, bootstrap intervals included (the
    judges' readings given): what each cell costs beyond training and translating."""
    import numpy as np

    from benchbias.foundation.contract import Evidence
    from benchbias.scoring.metrics import BUILTIN_METRICS, score_cell

    g = torch.Generator().manual_seed(0)
    real, translated = torch.rand(200, 1, 32, 32, generator=g), torch.rand(200, 1, 32, 32, generator=g)
    mask = torch.rand(200, 1, 32, 32, generator=g) > 0.9
    rng = np.random.default_rng(0)
    p = lambda: rng.random(200)  # noqa: E731
    evidence = Evidence(
        source=real,
        translated=translated,
        real=real,
        tumor_mask=mask,
        source_is_tumor=np.arange(200) % 2 == 1,
        brain_fraction=np.full(200, 0.5),
        out_of_range=np.zeros(200),
        p_tumor=p(),
        p_tumor_real=p(),
        second_p_tumor=p(),
        second_p_tumor_real=p(),
        segmented=mask,
        segmented_real=mask.roll(1, -1),
    )
    metrics = [m() for m in BUILTIN_METRICS]
    scores, intervals = benchmark(score_cell, metrics, evidence)
    assert len(scores) > 30 and intervals["mae"] is not None
    benchmark.extra_info["cells_per_second"] = 1 / benchmark.stats.stats.mean


@pytest.fixture(scope="module")
def real_size_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-size")
    write_dataset(root, SynthSpec(subjects=1, seed=0, shape=(240, 240, 155)))
    layout = REGISTRY.get("dataset", "brats2018").cls()
    return layout, layout.cases(root, ("flair", "t1"))[0]


def test_monai_loading_one_case(benchmark, real_size_case):
    """LoadImaged -> ... -> axial slices for one 240x240x155 case (the real BraTS size)."""
    layout, case = real_size_case
    slices = benchmark.pedantic(load_case_slices, args=(case, layout, "flair", "t1", SliceConfig(image_size=64)), rounds=3)
    assert len(slices) > 0


def test_check_against_the_committed_leaderboard(benchmark):
    """Validate the committed leaderboard (schema plus every summary recomputed) and check it
    against itself: what ``benchbias check`` does after Python has started."""
    from benchbias.leaderboard.compare import check, load_scored, parse_tolerances

    board = Path(__file__).resolve().parents[2] / "leaderboards" / "synthetic-quick.json"

    def validate_and_check():
        scored = load_scored(board)
        return scored, check(scored, load_scored(board), parse_tolerances([], scored.table))

    scored, result = benchmark(validate_and_check)
    assert result.passed and len(result.rows) == 1 + 5 * len(scored.table.checked())


def cells_benchmark(steps: int):
    """synthetic-smoke's data and judge, L1 and CycleGAN at synthetic-quick's network sizes."""
    from benchbias.foundation.benchmark_files import find_benchmark, parse_benchmark, read_yaml

    path = find_benchmark("synthetic-smoke")
    raw = read_yaml(path)
    raw["training"]["steps"] = steps
    quick = {"filters": 8, "blocks": 2, "batch_size": 4}
    raw["methods"] = {"l1": {"params": quick}, "cyclegan": {"params": {**quick, "disc_filters": 8}}}
    return parse_benchmark(raw, str(path))


@pytest.mark.parametrize(("jobs", "steps"), [(1, 1), (2, 1), (1, 100), (2, 100)])
def test_cells_per_second_by_jobs(benchmark, jobs, steps, tmp_path):
    """Six cells (L1 and CycleGAN at 3 fractions) in this process at torch's threads (jobs 1) or in
    two worker processes of one thread each (jobs 2). At 1 step per cell the time is the executor's
    overhead (worker start-up, data and judge per worker); at 100 it is mostly training."""
    from benchbias.run.options import RunOptions
    from benchbias.run.runner import Run

    bench = cells_benchmark(steps)
    counter = iter(range(100))

    def run():
        out = tmp_path / f"run{next(counter)}"
        return Run(bench, REGISTRY, RunOptions(out=out, device="cpu", progress=False, jobs=jobs)).execute()

    results = benchmark.pedantic(run, rounds=2, warmup_rounds=0)
    assert results["provenance"]["cells_run"] == 6
    benchmark.extra_info["cells_per_second"] = 6 / benchmark.stats.stats.mean
    benchmark.extra_info["threads_per_cell"] = results["provenance"]["compute_settings"]["threads"]
