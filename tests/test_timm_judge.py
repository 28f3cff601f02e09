"""The second judge, ``timm-cnn``: found in the plugins folder, trains for real on tiny synthetic slices
(a bright blob is a tumor), survives the judge's float16 store and load, is deterministic, and names
a bad model in one line."""

import hashlib
from pathlib import Path

import pytest
import torch

from benchbias.foundation.config import ClassifierConfig
from benchbias.foundation.contract import ParamError, TrainContext
from benchbias.foundation.registry import load_registry
from benchbias.judges import pinned

STEPS = 60
PARAMS = {"batch_size": 16}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Weights are reproducible for a fixed thread count; one thread is also immune to stalls on busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blobs(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy grey disc ('brain') on black; every other slice has a bright blob ('tumor') somewhere in it."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    centre = (size - 1) / 2
    brain = ((yy - centre) ** 2 + (xx - centre) ** 2 <= (0.42 * size) ** 2).float()
    labels = torch.arange(n) % 2
    images = torch.empty(n, 1, size, size)
    for i in range(n):
        tissue = 0.45 + 0.1 * torch.rand(1, generator=g) + 0.05 * torch.randn(size, size, generator=g)
        image = brain * tissue
        if labels[i]:
            cy, cx = (centre + (torch.rand(2, generator=g) - 0.5) * 0.4 * size).tolist()
            radius = 2.5 + 2.0 * torch.rand(1, generator=g).item()
            blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
            image = image + 0.45 * blob * brain
        images[i, 0] = image.clamp(0, 1) * 2 - 1
    return images, labels


def context(seed: int, steps: int, workdir: Path) -> TrainContext:
    return TrainContext(seed=seed, device=torch.device("cpu"), steps=steps, workdir=workdir)


def train(registry, tmp_path, seed=0, **params):
    """As ``Run.train_judge``: ``pinned.train`` with a ``ClassifierConfig`` and a context factory."""
    classifier = registry.get("classifier", "timm-cnn").cls(**{**PARAMS, **params})
    images, labels = blobs(96, seed=1)
    holdout, holdout_labels = blobs(64, seed=2)
    config = ClassifierConfig(name="timm-cnn", plugin="timm-cnn", params=classifier.hparams, steps=STEPS)
    blob, info = pinned.train(
        classifier, config, seed, images, labels, holdout, holdout_labels.numpy(), lambda s, steps, label: (context(s, steps, tmp_path), _no_bar())
    )
    return classifier, blob, info, holdout


class _no_bar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture(scope="module")
def trained(registry, tmp_path_factory):
    return train(registry, tmp_path_factory.mktemp("timm-judge"))


def test_discovered_in_the_plugins_folder(registry):
    entry = registry.get("classifier", "timm-cnn")
    assert entry.origin.source == "file" and entry.origin.location == "benchbias_plugins/timm_cnn.py"
    assert len(entry.code_sha256) == 64
    classifier = entry.cls()
    assert set(classifier.hparams) == {
        "model", "model_args", "batch_size", "lr", "weight_decay", "augment", "intensity_augment",
        "adversarial_eps", "adversarial_steps", "adversarial_share",
    }  # fmt: skip
    assert classifier.hparams["adversarial_eps"] == 0.0  # adversarial training is opt-in
    assert classifier.hparams["augment"] and classifier.hparams["intensity_augment"]


def test_learns_a_bright_blob_and_returns_probabilities(trained):
    classifier, blob, info, holdout = trained
    p = classifier.predict_proba(holdout)
    assert p.shape == (len(holdout),) and p.dtype == torch.float32 and p.device.type == "cpu"
    assert 0 <= p.min() and p.max() <= 1
    # Measured after reloading the stored float16 bytes: it has learnt something.
    assert info["holdout_accuracy"] >= 0.8, info
    assert info["name"] == "timm-cnn" and info["steps"] == STEPS and info["trained_with"]["threads"] == 1
    assert len(blob) < 1_000_000
    assert classifier.predict_proba(holdout[:0]).shape == (0,)


def test_float16_store_and_load_give_the_same_predictions(registry, trained, tmp_path):
    classifier, blob, info, holdout = trained
    files = pinned.JudgeFiles(tmp_path / "j.pt", tmp_path / "j.json")
    record = {**info, "protocol_hash": "p" * 64, "dataset_fingerprint": "d" * 64, "code_sha256": "c" * 64}
    pinned.store(files, blob, record)
    fresh = registry.get("classifier", "timm-cnn").cls(**PARAMS)
    assert pinned.load(files, fresh, "p" * 64, "d" * 64, "c" * 64)["sha256"] == hashlib.sha256(blob).hexdigest()
    assert torch.equal(fresh.predict_proba(holdout), classifier.predict_proba(holdout))
    # Every floating tensor travels as float16 and is loaded as the float32 of those values.
    state = torch.load(files.weights, weights_only=True)
    floats = [k for k, v in state.items() if v.is_floating_point()]
    assert floats and all(state[k].dtype == torch.float16 for k in floats)
    assert all(torch.equal(state[k].float(), fresh.network.state_dict()[k]) for k in floats)


def test_same_seed_same_weights_and_float16_keeps_the_calls(registry, trained, tmp_path):
    _, blob, info, holdout = trained
    # The same training outside pinned.train (whose global seeding the plugin does not rely on).
    torch.manual_seed(12345)
    again = registry.get("classifier", "timm-cnn").cls(**PARAMS)
    images, labels = blobs(96, seed=1)
    again.fit(images, labels, context(0, STEPS, tmp_path))
    full = again.predict_proba(holdout)
    assert hashlib.sha256(pinned._weights_bytes(again)).hexdigest() == hashlib.sha256(blob).hexdigest()
    # Float16 storage moves probabilities by rounding noise only, and the accuracy not at all.
    halved = registry.get("classifier", "timm-cnn").cls(**PARAMS)
    halved.load_state_dict({k: v.half() if v.is_floating_point() else v for k, v in again.state_dict().items()})
    reloaded = halved.predict_proba(holdout)
    assert (reloaded - full).abs().max() < 0.02
    truth = blobs(64, seed=2)[1].numpy().astype(bool)
    assert float(((full.numpy() > 0.5) == truth).mean()) == pytest.approx(info["holdout_accuracy"], abs=1 / 64)


def test_another_seed_other_weights(registry, tmp_path):
    classifier = registry.get("classifier", "timm-cnn").cls(**PARAMS)
    classifier.fit(*blobs(16, seed=1), context(0, 2, tmp_path))
    first = pinned._weights_bytes(classifier)
    classifier.fit(*blobs(16, seed=1), context(1, 2, tmp_path))
    assert pinned._weights_bytes(classifier) != first


def test_bad_model_is_one_clear_line(registry):
    cls = registry.get("classifier", "timm-cnn").cls
    with pytest.raises(ParamError) as err:
        cls(model="resnet10x")
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("timm-cnn: parameter 'model': 'resnet10x' is not a timm model")
    assert "resnet10t" in message and "timm.list_models()" in message
    with pytest.raises(ParamError, match=r"^timm-cnn: parameter 'model_args': .*'bogus'") as err:
        cls(model_args={"bogus": 1})
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(ParamError, match="parameter 'model' must be str"):
        cls(model=18)


def test_a_model_that_cannot_read_the_slices_is_named(registry, tmp_path):
    """A ViT with a fixed patch grid for larger images: refused at the first forward, in one line."""
    classifier = registry.get("classifier", "timm-cnn").cls(model="test_vit3", **PARAMS)
    with pytest.raises(ParamError, match=r"^timm-cnn: parameter 'model': 'test_vit3' cannot judge 1x32x32 slices \(AssertionError: Input height") as err:
        classifier.fit(*blobs(8, seed=1), context(0, 1, tmp_path))
    assert len(str(err.value).splitlines()) == 1
