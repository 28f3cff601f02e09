"""Loss curves: each cell keeps the losses its model reported while training (means over equal
stretches of the steps), models trained together each their own; real translators, a few real steps."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchbias.foundation.contract import PairedSlices, UnpairedDomains
from benchbias.foundation.registry import load_registry
from benchbias.run.losses import CURVE_POINTS, RecordingContext


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(registry, name, **params):
    small = {"filters": 4, "blocks": 1, "batch_size": 2, **({} if name == "l1" else {"disc_filters": 4, "pool_size": 4})}
    small = {k: v for k, v in small.items() if k in registry.get("translator", name).cls.params}
    return registry.get("translator", name).cls(**{**small, **params})


def data(translator, seed=0, n=12, size=32):
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.randn(n, 1, size // 8, size // 8, generator=g), size=(size, size), mode="bilinear")
    source, target = torch.tanh(1.5 * field), torch.tanh(2.0 * field.flip(-1)) * 0.8
    return (PairedSlices if translator.paired else UnpairedDomains)(source, target)


def recording(steps, seen):
    """A recording context whose progress callback sees every step's losses (log_every=1)."""
    return RecordingContext(
        seed=0, device=torch.device("cpu"), steps=steps, workdir=Path("unused"), log_every=1, on_step=lambda step, losses: seen.append(losses)
    )


@pytest.mark.parametrize("name, steps", [("l1", 45), ("cyclegan", 7)])
def test_a_cell_keeps_the_means_of_its_losses_over_equal_stretches(registry, name, steps):
    seen = []
    ctx = recording(steps, seen)
    translator = tiny(registry, name)
    torch.manual_seed(0)
    translator.fit(data(translator), ctx)
    curve = ctx.curve()
    points = min(CURVE_POINTS, steps)
    assert len(curve["steps"]) == points and curve["steps"][-1] == steps
    assert curve["steps"] == sorted(set(curve["steps"])), "stretches end at increasing steps"
    assert set(curve["terms"]) == set(seen[0]), "every term the translator reports"
    starts = [0, *curve["steps"][:-1]]
    for term, means in curve["terms"].items():
        expected = [sum(s[term] for s in seen[a:b]) / (b - a) for a, b in zip(starts, curve["steps"])]
        assert means == pytest.approx(expected, rel=1e-4, abs=1e-7), term


def test_models_trained_together_keep_each_its_own_curve(registry):
    translator = tiny(registry, "l1")
    sets = [data(translator, seed=i) for i in range(3)]
    alone = []
    for d in sets:
        ctx = recording(6, [])
        torch.manual_seed(0)
        tiny(registry, "l1").fit(d, ctx)
        alone.append(ctx.curve())
    contexts = [recording(6, []) for _ in sets]
    torch.manual_seed(0)
    tiny(registry, "l1").fit_together(sets, contexts)
    together = [c.curve() for c in contexts]
    for i in range(3):
        assert together[i]["steps"] == alone[i]["steps"]
        assert together[i]["terms"]["l1"] == pytest.approx(alone[i]["terms"]["l1"], rel=1e-4), f"model {i} keeps its own losses"
    assert together[0]["terms"]["l1"] != together[1]["terms"]["l1"]


def test_a_diverged_loss_is_recorded_as_null_and_nothing_reported_is_no_curve():
    ctx = RecordingContext(seed=0, device=torch.device("cpu"), steps=4, workdir=Path("unused"))
    assert ctx.curve() is None
    for step in ctx.loop():
        ctx.report({"loss": torch.tensor(float("nan") if step == 3 else 1.0 + step)})
    curve = ctx.curve()
    assert curve == {"steps": [1, 2, 3, 4], "terms": {"loss": [1.0, 2.0, 3.0, None]}}
