"""The shared adversarial parts: GAN losses (benchbias.nets.losses) and the history pool (benchbias.nets.image_pool)."""

import math

import pytest
import torch

from benchbias.nets.image_pool import ImagePool
from benchbias.nets.losses import GAN_MODES, GANLoss, gan_loss

# ---- GAN losses against hand-computed values -----------------------------------------------

LN3 = math.log(3.0)  # sigmoid(ln 3) = 3/4


def patches(values, shape=(1, 1, 1, -1)) -> torch.Tensor:
    """A PatchGAN discriminator's output ``(N, 1, h, w)`` holding ``values`` (by default one image
    whose patches lie in one row), as the losses receive it."""
    return torch.tensor(values, dtype=torch.float32).reshape(shape).clone()


def test_lsgan_targets_are_one_for_real_and_zero_for_fake():
    p = patches([[0.5, 2.0], [1.0, -1.0]], shape=(2, 1, 1, 2))  # two images of two patches
    # real: mean((p - 1)^2) = (0.25 + 1 + 0 + 4) / 4;  fake: mean(p^2) = (0.25 + 4 + 1 + 1) / 4
    assert gan_loss(p, True, "lsgan").item() == pytest.approx(5.25 / 4)
    assert gan_loss(p, False, "lsgan").item() == pytest.approx(6.25 / 4)


def test_vanilla_is_binary_cross_entropy_on_logits():
    p = patches([0.0, LN3])
    # real: -log sigmoid(p) = [log 2, log 4/3];  fake: -log(1 - sigmoid(p)) = [log 2, log 4]
    assert gan_loss(p, True, "vanilla").item() == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)
    assert gan_loss(p, False, "vanilla").item() == pytest.approx((math.log(2) + math.log(4)) / 2)


def test_vanilla_is_stable_for_confident_logits():
    p = patches([-200.0, 200.0])
    assert gan_loss(p, True, "vanilla").item() == pytest.approx(100.0)  # (200 + 0) / 2
    assert gan_loss(p, False, "vanilla").item() == pytest.approx(100.0)


@pytest.mark.parametrize("mode", GAN_MODES)
def test_generator_side_calls_fakes_real_and_discriminator_side_is_halved(mode):
    real, fake = patches([0.3, 1.7]), patches([-0.4, 0.9])
    loss = GANLoss(mode)
    assert loss.generator(fake).item() == pytest.approx(gan_loss(fake, True, mode).item())
    expected = 0.5 * (gan_loss(real, True, mode).item() + gan_loss(fake, False, mode).item())
    assert loss.discriminator(real, fake).item() == pytest.approx(expected)


def test_vanilla_generator_gradient_is_the_non_saturating_one():
    p = patches([0.0, LN3]).requires_grad_()
    GANLoss("vanilla").generator(p).backward()
    # d/dp mean(-log sigmoid(p)) = -(1 - sigmoid(p)) / N
    assert torch.allclose(p.grad, patches([-0.5 / 2, -0.25 / 2]))


def test_lsgan_discriminator_gradient():
    real = patches([0.5]).requires_grad_()
    fake = patches([0.5]).requires_grad_()
    GANLoss("lsgan").discriminator(real, fake).backward()
    # 0.5 * d/dx (x - 1)^2 = x - 1;  0.5 * d/dx x^2 = x
    assert real.grad.item() == pytest.approx(-0.5)
    assert fake.grad.item() == pytest.approx(0.5)


@pytest.mark.parametrize("mode", GAN_MODES)
def test_losses_are_float32_for_bfloat16_predictions(mode):
    p = patches([0.25, -1.5]).to(torch.bfloat16)
    loss = gan_loss(p, True, mode)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(gan_loss(p.float(), True, mode).item())


@pytest.mark.parametrize("mode", GAN_MODES)
def test_models_trained_together_get_one_loss_each_equal_to_their_own(mode):
    """A stack's prediction ``(models, N, 1, h, w)`` gives one loss per model, each the loss of that
    model's ``(N, 1, h, w)`` prediction alone (not the mean over the stack)."""
    stacked = torch.randn(3, 2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    real_stacked = torch.randn(3, 2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    loss = GANLoss(mode)
    for real in (True, False):
        per_model = gan_loss(stacked, real, mode)
        assert per_model.shape == (3,)
        own = torch.stack([gan_loss(stacked[m], real, mode) for m in range(3)])
        assert own.shape == (3,) and torch.allclose(per_model, own)
    assert torch.allclose(loss.generator(stacked), torch.stack([loss.generator(p) for p in stacked]))
    own = torch.stack([loss.discriminator(r, f) for r, f in zip(real_stacked, stacked, strict=True)])
    assert torch.allclose(loss.discriminator(real_stacked, stacked), own)
    assert len(set(own.tolist())) == 3  # the models' losses differ: each is its own


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="wgan"):
        GANLoss("wgan")
    with pytest.raises(ValueError, match="wgan"):
        gan_loss(torch.zeros(1), True, "wgan")


# ---- the history pool ----------------------------------------------------------------------


def labelled(values) -> torch.Tensor:
    """A batch of 1x2x2 images, image i filled with values[i] (so outputs can be traced)."""
    return torch.tensor(values, dtype=torch.float32)[:, None, None, None].expand(-1, 1, 2, 2).contiguous()


def labels(images: torch.Tensor) -> list[float]:
    return images[:, 0, 0, 0].tolist()


class ReferencePool:
    """CycleGAN's ``ImagePool.query`` loop, taking its coin flips and slots from the same draws."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.generator, self.images = size, torch.Generator().manual_seed(seed), []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        fill = min(len(images), self.size - len(self.images))
        rest = len(images) - fill
        if rest:
            coins = torch.rand(rest, generator=self.generator).tolist()
            slots = torch.randint(self.size, (rest,), generator=self.generator).tolist()
        out = []
        for i, image in enumerate(images):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif coins[i - fill] > 0.5:
                old = self.images[slots[i - fill]].clone()
                self.images[slots[i - fill]] = image.clone()
                out.append(old)
            else:
                out.append(image)
        return torch.stack(out)


def test_pool_of_size_zero_passes_everything_through():
    pool = ImagePool(0, torch.Generator().manual_seed(0))
    for start in range(0, 30, 3):
        batch = labelled(range(start, start + 3))
        assert torch.equal(pool.query(batch), batch)
    assert len(pool) == 0


def test_pool_returns_inputs_unchanged_while_filling_and_respects_capacity():
    pool = ImagePool(5, torch.Generator().manual_seed(0))
    first, second = labelled([1, 2]), labelled([3, 4])
    assert torch.equal(pool.query(first), first) and len(pool) == 2
    assert torch.equal(pool.query(second), second) and len(pool) == 4
    for step in range(20):
        pool.query(labelled([10 + step, 30 + step, 50 + step]))
        assert len(pool) == 5
        assert pool.images.shape == (5, 1, 2, 2)


@pytest.mark.parametrize("size,batch", [(1, 4), (3, 2), (4, 4), (5, 3), (50, 16)])  # (3, 2), (5, 3): a batch completes the pool
def test_pool_mixes_history_exactly_as_the_reference_loop(size, batch):
    pool, reference = ImagePool(size, torch.Generator().manual_seed(7)), ReferencePool(size, seed=7)
    from_history = 0
    for step in range(12):
        images = labelled([1000 * step + i for i in range(batch)])
        out, expected = pool.query(images), reference.query(images)
        assert labels(out) == labels(expected), f"step {step}"
        from_history += sum(label not in labels(images) for label in labels(out))
        assert sorted(labels(pool.images[: len(pool)])) == sorted(labels(torch.stack(reference.images)))
    assert from_history > 0  # once full, the discriminator does see older fakes


def test_pool_is_deterministic_per_seed():
    def history(seed):
        pool = ImagePool(4, torch.Generator().manual_seed(seed))
        return [labels(pool.query(labelled([10 * step + i for i in range(4)]))) for step in range(10)]

    assert history(3) == history(3)
    assert history(3) != history(4)


def test_pool_output_is_detached_and_keeps_the_input_dtype():
    pool = ImagePool(2, torch.Generator().manual_seed(0))
    images = torch.randn(4, 1, 2, 2, requires_grad=True)
    out = pool.query(images)
    assert not out.requires_grad
    out = pool.query(torch.randn(4, 1, 2, 2).to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    with pytest.raises(ValueError):
        ImagePool(-1)
