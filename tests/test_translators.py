"""The translators of Table 1 (gan, cyclegan, condgan, l1) and pix2pix, trained for real on tiny data.

The loss tests recompute each method's objective independently, from copies of its networks taken
before a training step, and check both the loss terms it reports and the weights after the step."""

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from monai.networks.nets import UNet
from torch import nn

from benchbias.foundation.contract import PairedSlices, ParamError, TrainContext, UnpairedDomains
from benchbias.foundation.registry import load_registry
from benchbias.nets.networks import impartial_cnn, init_weights, patch_discriminator, resnet_generator
from benchbias.nets.translation import AdversarialTranslator, ModelStack, frozen

METHODS = {"gan": False, "cyclegan": False, "condgan": True, "pix2pix": True, "l1": True}
ADVERSARIAL = ["gan", "cyclegan", "condgan", "pix2pix"]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The networks here are tiny: one thread is as fast, and immune to stalls when cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def translator(registry, name, **params):
    small = {"filters": 4, "blocks": 1, "batch_size": 2}
    if name != "l1":
        small["disc_filters"] = 4
    return registry.get("translator", name).cls(**{**small, **params})


def slices(n=16, size=32, seed=0):
    """Smooth random 'anatomy' in [-1, 1] (a blurred noise field) and a non-linear 'other contrast' of it."""
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.randn(n, 1, size // 8, size // 8, generator=g), size=(size, size), mode="bilinear")
    source = torch.tanh(1.5 * field)
    target = torch.tanh(2.0 * field.flip(-1)) * 0.8 - 0.1 * source
    return source, target


def data_for(t, source, target):
    return (PairedSlices if t.paired else UnpairedDomains)(source, target)


def context(steps=3, seed=0):
    return TrainContext(seed=seed, device=torch.device("cpu"), steps=steps, workdir=Path("unused"))


def networks(t) -> dict[str, nn.Module]:
    return {name: value for name, value in vars(t).items() if isinstance(value, nn.Module)}


def fit(t, data, seed=0, steps=3):
    torch.manual_seed(seed)  # as the runner does before each cell
    t.fit(data, context(steps, seed))
    return t


# ---- registration and parameters -----------------------------------------------------------


def test_registry_lists_every_method_with_its_pairing(registry):
    names = registry.names("translator")
    for name, paired in METHODS.items():
        assert name in names
        assert registry.get("translator", name).cls.paired is paired


def test_a_translator_that_adds_to_fit_does_not_train_together(registry):
    """fit_together trains the networks without calling fit(): a subclass whose fit() also learns
    something of its own (the canaries estimate their data's tumor share) would lose it. Runs with
    ``models_per_program`` train every translator that says trains_together that way."""
    for name in registry.names("translator"):
        cls = registry.get("translator", name).cls
        if not getattr(cls, "trains_together", False):
            continue
        fit_owner = next(k for k in cls.__mro__ if "fit" in vars(k))
        together_owner = next(k for k in cls.__mro__ if "fit_together" in vars(k))
        assert fit_owner is together_owner or issubclass(together_owner, fit_owner), (name, fit_owner, together_owner)


def test_defaults_are_the_paper_scale(registry):
    def defaults(name):
        return {k: p.default for k, p in registry.get("translator", name).cls.params.items()}

    for name in METHODS:
        d = defaults(name)
        assert (d["filters"], d["blocks"], d["batch_size"], d["lr"], d["beta1"]) == (64, 9, 1, 2e-4, 0.5)
    for name in ADVERSARIAL:
        assert (defaults(name)["disc_filters"], defaults(name)["disc_layers"]) == (64, 3)
    cyclegan = defaults("cyclegan")
    assert (cyclegan["gan_mode"], cyclegan["lambda_cycle"], cyclegan["lambda_identity"], cyclegan["pool_size"]) == ("lsgan", 10.0, 0.5, 50)
    assert (defaults("condgan")["gan_mode"], defaults("condgan")["lambda_l1"]) == ("vanilla", 0.0)
    assert (defaults("pix2pix")["gan_mode"], defaults("pix2pix")["lambda_l1"]) == ("vanilla", 100.0)
    assert defaults("gan")["gan_mode"] == "vanilla"
    assert "pool_size" not in defaults("gan") and "lambda_l1" not in defaults("gan")


def test_parameters_are_validated(registry):
    cls = registry.get("translator", "cyclegan").cls
    with pytest.raises(ParamError, match="gan_mode"):
        cls(gan_mode="wgan")
    with pytest.raises(ParamError, match="pool_size"):
        cls(pool_size=-1)
    with pytest.raises(ParamError, match="lambda_l1"):
        cls(lambda_l1=1.0)  # not a CycleGAN parameter
    assert cls(lambda_cycle=5).hparams["lambda_cycle"] == 5.0  # ints are accepted for floats


# ---- training for real ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHODS))
def test_trains_every_network_and_translates(registry, name):
    source, target = slices()
    t = fit(translator(registry, name), data_for(translator(registry, name), source, target))

    untrained = translator(registry, name)
    torch.manual_seed(0)
    untrained.setup(context())  # the same initial weights the fit started from
    trained_nets, initial_nets = networks(t), networks(untrained)
    assert "generator" in trained_nets and len(trained_nets) == {"cyclegan": 4, "l1": 1}.get(name, 2)
    for key, net in trained_nets.items():
        before = dict(initial_nets[key].named_parameters())
        changed = [n for n, p in net.named_parameters() if not torch.equal(p, before[n])]
        assert changed == [n for n, _ in net.named_parameters()], f"{key}: parameters left untrained"

    out = t.translate(source[:5])
    assert out.shape == (5, 1, 32, 32) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.isfinite(out).all() and out.min() >= -1.0 and out.max() <= 1.0
    assert not torch.equal(out, untrained.translate(source[:5]))


@pytest.mark.parametrize("name", list(METHODS))
def test_refuses_the_other_kind_of_data(registry, name):
    source, target = slices(n=4)
    wrong = UnpairedDomains(source, target) if METHODS[name] else PairedSlices(source, target)
    with pytest.raises(TypeError, match="paired"):
        translator(registry, name).fit(wrong, context())


@pytest.mark.parametrize("name", list(METHODS))
def test_same_seed_same_translations_other_seed_different(registry, name):
    source, target = slices()
    params = {"pool_size": 2} if name == "cyclegan" else {}  # a small pool fills, so its draws matter

    def run(seed):
        t = translator(registry, name, **params)
        return fit(t, data_for(t, source, target), seed=seed, steps=4).translate(source[:4])

    first = run(1)
    assert torch.equal(first, run(1))
    assert not torch.equal(first, run(2))


@pytest.mark.parametrize("name", list(METHODS))
def test_steps_under_bfloat16_autocast(registry, name):
    """fit runs training_step inside ctx.autocast() (bf16 on CUDA): the same plumbing under CPU autocast,
    with a pool that fills and then mixes bf16 fakes."""
    t = translator(registry, name, **({"pool_size": 2} if name == "cyclegan" else {}))
    torch.manual_seed(0)
    t.setup(context())
    source, target = slices(n=6)
    for i in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            terms = t.training_step(source[2 * i : 2 * i + 2], target[2 * i : 2 * i + 2], context())
    assert all(v.dtype == torch.float32 and math.isfinite(v.item()) for v in terms.values())
    assert all(p.dtype == torch.float32 and p.requires_grad for net in networks(t).values() for p in net.parameters())


def test_cyclegan_translates_with_its_source_to_target_generator(registry):
    source, target = slices()
    t = fit(translator(registry, "cyclegan"), UnpairedDomains(source, target))
    with torch.no_grad():
        assert torch.equal(t.translate(source[:3]), t.generator(source[:3]))
        assert not torch.equal(t.translate(source[:3]), t.generator_ba(source[:3]))


# ---- the losses each method combines, recomputed independently -------------------------------


def real_loss(p, mode):
    """Independent of benchbias.nets.losses: LSGAN (p - 1)^2, vanilla -log sigmoid(p) = softplus(-p)."""
    return ((p - 1) ** 2).mean() if mode == "lsgan" else F.softplus(-p).mean()


def fake_loss(p, mode):
    return (p**2).mean() if mode == "lsgan" else F.softplus(p).mean()


def adam_step(nets, loss, t):
    params = [p for net in nets for p in net.parameters()]
    optimizer = torch.optim.Adam(params, lr=t.hparams["lr"], betas=(t.hparams["beta1"], 0.999))
    optimizer.zero_grad()
    loss.backward()
    for net in nets:
        largest = max(p.grad.abs().max() for p in net.parameters())
        for p in net.parameters():
            p.significant = p.grad.abs() > 1e-4 * largest
    optimizer.step()


def one_step(registry, name, **params):
    """A translator after ``setup``, copies of its initial networks, a batch, and one training step's terms."""
    t = translator(registry, name, **params)
    torch.manual_seed(0)
    t.setup(context())
    before = {key: copy.deepcopy(net) for key, net in networks(t).items()}
    source, target = slices(n=2, seed=3)
    a, b = source, (target if t.paired else slices(n=2, seed=4)[1])
    terms = t.training_step(a, b, context())
    return t, before, a, b, terms


def assert_terms(terms, expected):
    assert set(terms) == set(expected)
    for key, value in expected.items():
        assert terms[key].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-6), key


def assert_same_weights(t, expected_nets):
    """Adam's first step moves each weight by about lr * sign(gradient), so a wrong objective shows as
    differences of 2 * lr. Weights whose gradient is zero up to rounding (the bias of a conv followed
    by instance norm: ~1e-6 of the largest gradient) move by lr * sign(rounding noise) and are left out."""
    compared = 0
    for key, net in expected_nets.items():
        for (n, p), q in zip(networks(t)[key].named_parameters(), net.parameters()):
            assert torch.allclose(p[q.significant], q[q.significant], atol=1e-6, rtol=0), f"{key}.{n}"
            compared += int(q.significant.sum())
    assert compared > 0.9 * sum(p.numel() for net in expected_nets.values() for p in net.parameters())


@pytest.mark.parametrize(
    "params",
    [{}, {"lambda_cycle": 0.0, "lambda_identity": 0.0}, {"lambda_cycle": 3.0, "lambda_identity": 0.0}, {"gan_mode": "vanilla"}],
)
def test_cyclegan_objective(registry, params):
    t, nets, a, b, terms = one_step(registry, "cyclegan", **params)
    mode, cycle = t.hparams["gan_mode"], t.hparams["lambda_cycle"]
    identity = cycle * t.hparams["lambda_identity"]
    G, Fb, Da, Db = nets["generator"], nets["generator_ba"], nets["disc_a"], nets["disc_b"]
    fake_b, fake_a = G(a), Fb(b)
    expected = {
        "gan_ab": real_loss(Db(fake_b), mode),
        "gan_ba": real_loss(Da(fake_a), mode),
        "cycle_a": (Fb(fake_b) - a).abs().mean(),
        "cycle_b": (G(fake_a) - b).abs().mean(),
    }
    g = expected["gan_ab"] + expected["gan_ba"] + cycle * (expected["cycle_a"] + expected["cycle_b"])
    if identity:
        expected["identity_ab"], expected["identity_ba"] = (G(b) - b).abs().mean(), (Fb(a) - a).abs().mean()
        g = g + identity * (expected["identity_ab"] + expected["identity_ba"])
    # The pool is still filling on the first step, so the discriminators see this step's fakes.
    expected["d_b"] = 0.5 * (real_loss(Db(b), mode) + fake_loss(Db(fake_b.detach()), mode))
    expected["d_a"] = 0.5 * (real_loss(Da(a), mode) + fake_loss(Da(fake_a.detach()), mode))
    assert_terms(terms, {"g": g, **expected})
    if not identity:
        assert "identity_ab" not in terms
    if not cycle:
        assert terms["g"].item() == pytest.approx((terms["gan_ab"] + terms["gan_ba"]).item(), rel=1e-6)

    adam_step([G, Fb], g, t)  # generators first, against the discriminators before their update
    adam_step([Da, Db], expected["d_a"] + expected["d_b"], t)
    assert_same_weights(t, nets)


@pytest.mark.parametrize(
    "name,params",
    # A pool's first query returns its (empty) history's input unchanged: the same objective.
    [
        ("condgan", {}),
        ("condgan", {"gan_mode": "lsgan"}),
        ("condgan", {"gan_mode": "lsgan", "pool_size": 50}),
        ("condgan", {"lambda_l1": 2.0}),
        ("pix2pix", {}),
    ],
)
def test_conditional_objectives(registry, name, params):
    t, nets, a, b, terms = one_step(registry, name, **params)
    mode, lambda_l1 = t.hparams["gan_mode"], t.hparams["lambda_l1"]
    G, D = nets["generator"], nets["disc"]
    fake_b = G(a)
    # Discriminator first (pix2pix order), on (source, image) pairs with the source first.
    d = 0.5 * (real_loss(D(torch.cat([a, b], 1)), mode) + fake_loss(D(torch.cat([a, fake_b.detach()], 1)), mode))
    adam_step([D], d, t)
    gan = real_loss(D(torch.cat([a, fake_b], 1)), mode)  # against the updated discriminator
    l1 = (fake_b - b).abs().mean()
    g = gan + lambda_l1 * l1
    expected = {"g": g, "gan": gan, "d": d, **({"l1": l1} if lambda_l1 else {})}
    assert_terms(terms, expected)
    if name == "condgan" and not params:
        assert "l1" not in terms and terms["g"].item() == terms["gan"].item()
    if name == "pix2pix":
        assert lambda_l1 == 100.0
        assert terms["g"].item() == pytest.approx((terms["gan"] + 100.0 * terms["l1"]).item(), rel=1e-6)
    adam_step([G], g, t)
    assert_same_weights(t, nets)


def test_gan_objective_has_nothing_tying_output_to_source(registry):
    t, nets, a, b, terms = one_step(registry, "gan")
    G, D = nets["generator"], nets["disc"]
    assert D[0].conv.in_channels == 1  # unconditional: sees images alone
    fake_b = G(a)
    g = real_loss(D(fake_b), "vanilla")
    d = 0.5 * (real_loss(D(b), "vanilla") + fake_loss(D(fake_b.detach()), "vanilla"))
    assert_terms(terms, {"g": g, "d": d})
    adam_step([G], g, t)
    adam_step([D], d, t)
    assert_same_weights(t, nets)


def test_l1_objective(registry):
    t, nets, a, b, terms = one_step(registry, "l1")
    loss = (nets["generator"](a) - b).abs().mean()
    assert_terms(terms, {"l1": loss})
    adam_step([nets["generator"]], loss, t)
    assert_same_weights(t, nets)


# ---- the shared networks and helpers -------------------------------------------------------


def test_patch_discriminator_is_the_70x70_patchgan():
    net = patch_discriminator(in_channels=2, filters=4, layers=3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [(2, 4, 2), (4, 8, 2), (8, 16, 2), (16, 32, 1), (32, 1, 1)]
    assert all(c.kernel_size == (4, 4) and c.padding == (1, 1) and c.bias is not None for c in convs)
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 and not any(n.affine or n.track_running_stats for n in norms)
    assert {m.negative_slope for m in net.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    assert net(torch.zeros(1, 2, 256, 256)).shape == (1, 1, 30, 30)

    # Receptive field of one interior patch (norms removed: instance norm couples every pixel).
    local = copy.deepcopy(net)
    for module in local.modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                setattr(module, child_name, nn.Identity())
    image = torch.randn(1, 2, 128, 128, requires_grad=True)
    local(image)[0, 0, 7, 7].backward()
    rows, cols = image.grad[0].abs().sum(0).nonzero().unbind(1)
    assert (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1) == (70, 70)


def test_frozen_stops_weight_gradients_and_restores_them_even_on_error():
    net = nn.Linear(3, 1)
    x = torch.randn(2, 3, requires_grad=True)
    with frozen(net):
        net(x).sum().backward()
    assert net.weight.grad is None and x.grad is not None
    with pytest.raises(RuntimeError), frozen(net):
        raise RuntimeError
    assert all(p.requires_grad for p in net.parameters())


def test_refitting_starts_from_fresh_optimisers(registry):
    source, target = slices()
    t = translator(registry, "condgan")
    fit(t, PairedSlices(source, target))
    fit(t, PairedSlices(source, target))
    assert len(t.optimizers) == 2
    assert isinstance(t, AdversarialTranslator) and math.isfinite(t.translate(source[:1]).sum().item())


def test_condgan_pool_keeps_generated_pairs_as_the_papers_run_did(registry):
    source, target = slices()
    t = fit(translator(registry, "condgan", gan_mode="lsgan", pool_size=50), PairedSlices(source, target), steps=3)
    assert len(t.pool) == 6 and t.pool.images.shape[1] == 2  # 3 steps x batch 2 (source, image) pairs
    assert translator(registry, "condgan").hparams["pool_size"] == 0  # Table 1's CondGAN: no pool by default


def test_generator_dropout_and_dropout_at_translation(registry):
    source, target = slices()
    plain = fit(translator(registry, "l1"), PairedSlices(source, target))
    assert not any(isinstance(m, nn.Dropout) for m in plain.generator.modules())
    t = fit(translator(registry, "l1", dropout=0.5, blocks=2), PairedSlices(source, target))
    assert sum(isinstance(m, nn.Dropout) for m in t.generator.modules()) == 2  # one per residual block
    assert torch.equal(t.translate(source), t.translate(source))  # off at translation by default
    t.hparams["dropout_at_translation"] = True  # the paper's test.py never called eval()
    torch.manual_seed(0)
    first, second = t.translate(source), t.translate(source)
    assert not torch.equal(first, second)
    torch.manual_seed(0)
    assert torch.equal(t.translate(source), first)  # still deterministic under the run's seed


# ---- training models together ----------------------------------------------------------------


def traced_fit(t, data, seed=0, steps=3):
    """Fit one model, recording the losses of every step."""
    curve = []
    torch.manual_seed(seed)
    t.fit(
        data,
        TrainContext(seed=seed, device=torch.device("cpu"), steps=steps, workdir=Path("unused"), log_every=1, on_step=lambda s, losses: curve.append(losses)),
    )
    return curve


@pytest.mark.parametrize("name", list(METHODS))
def test_models_trained_together_take_each_its_own_first_step(registry, name):
    """Three fractions' models as one program: model i's first-step losses are those of model i
    trained alone (to float rounding), each keeps its own loss curve, and each translates on its own."""
    params = {"pool_size": 4} if name in ("cyclegan", "condgan") else {}
    data = [data_for(translator(registry, name), *slices(seed=i)) for i in range(3)]
    alone = [traced_fit(translator(registry, name, **params), d) for d in data]
    curves = [[] for _ in data]
    contexts = [
        TrainContext(seed=0, device=torch.device("cpu"), steps=3, workdir=Path("unused"), log_every=1, on_step=lambda s, losses, c=c: c.append(losses))
        for c in curves
    ]
    torch.manual_seed(0)
    models = translator(registry, name, **params).fit_together(data, contexts)
    assert len(models) == 3 and all(len(c) == 3 for c in curves)  # every model reports every step, the last included
    for i in range(3):
        assert curves[i][0].keys() == alone[i][0].keys()
        for term, value in alone[i][0].items():
            assert curves[i][0][term] == pytest.approx(value, rel=1e-5, abs=1e-6), (i, term)
        assert curves[i][0] != curves[(i + 1) % 3][0]  # each its own data
        out = models[i].translate(data[i].source[:4])
        assert out.shape == (4, 1, 32, 32) and torch.isfinite(out).all()
        assert all(not isinstance(net, ModelStack) for net in networks(models[i]).values())


def test_a_model_stack_refuses_inputs_without_its_model_axis(registry):
    stack = ModelStack(nn.Conv2d(1, 2, 3), 3)
    assert stack(torch.zeros(3, 2, 1, 8, 8)).shape == (3, 2, 2, 6, 6)
    with pytest.raises(ValueError, match="leading model axis of 3"):
        stack(torch.zeros(2, 1, 8, 8))
    with pytest.raises(TypeError, match="buffers"):
        ModelStack(nn.BatchNorm2d(2), 3)


def test_a_plugin_that_does_not_opt_in_cannot_train_together(registry):
    t = translator(registry, "l1")
    type(t).trains_together = False
    try:
        with pytest.raises(TypeError, match="does not train models together"):
            t.fit_together([data_for(t, *slices())], [context()])
    finally:
        type(t).trains_together = True


@pytest.mark.parametrize("models", [1, 3])
@pytest.mark.parametrize("name", list(METHODS))
def test_each_step_sees_the_method_s_kind_of_batches(registry, name, models):
    """Paired methods get the target slice of every source slice drawn; unpaired methods get target
    slices drawn on their own. The data: target = -source, so a pair is recognisable."""
    t = translator(registry, name)
    seen = []
    original = type(t).training_step

    def spy(self, source, target, ctx):
        seen.append((source.detach().clone(), target.detach().clone()))
        return original(self, source, target, ctx)

    t.training_step = spy.__get__(t)
    source, _ = slices(n=12)
    data = [data_for(t, source + i, -(source + i)) for i in range(models)]  # each model its own pairs
    torch.manual_seed(0)
    if models == 1:
        t.fit(data[0], context(steps=4))
    else:
        t.fit_together(data, [context(steps=4) for _ in range(models)])
    assert len(seen) == 4
    for a, b in seen:
        assert a.shape == b.shape == ((models,) if models > 1 else ()) + (2, 1, 32, 32)
        assert torch.equal(b, -a) == t.paired


@pytest.mark.parametrize("build", ["generator", "discriminator", "classifier", "unet"])
def test_a_model_stack_runs_each_copy_as_that_copy_alone(build):
    """Copy i of a stack gives its own output on x[i], and gradients reach each copy's weights and
    input as they would alone: for the networks run as grouped convolutions, and for those run through
    vmap because grouping would mix the copies (a linear layer; a U-Net, whose skips concatenate
    channels)."""
    torch.manual_seed(0)
    if build == "generator":
        net = resnet_generator(filters=4, blocks=1)
    elif build == "discriminator":
        net = patch_discriminator(1, filters=4, layers=2)
    elif build == "classifier":
        net = impartial_cnn(16, channels=(4, 8))
    else:
        net = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,), num_res_units=0)
    init_weights(net)
    stack = ModelStack(net.to(memory_format=torch.channels_last), 3)
    assert stack.grouped == (build in ("generator", "discriminator"))
    with torch.no_grad():
        for w in stack.stacked().values():
            w.add_(0.05 * torch.randn_like(w))  # make the copies differ
    x = torch.randn(3, 2, 1, 16, 16, requires_grad=True)
    out = stack(x)
    probe = torch.arange(out[0].numel()).reshape(out[0].shape).sin()  # a loss that weighs every output
    (out * probe).sum().backward()
    for i in range(3):
        alone = stack.copy(i)
        xi = x[i].detach().clone().requires_grad_()
        expected = alone(xi)
        torch.testing.assert_close(out[i], expected, rtol=1e-4, atol=1e-5)
        (expected * probe).sum().backward()
        grads = dict(alone.named_parameters())
        for name, grad in stack.stacked(grads=True).items():
            # (a bias before instance norm has a true gradient of 0: only rounding is left there)
            torch.testing.assert_close(grad[i], grads[name].grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(x.grad[i], xi.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("copies", [1, 3])
def test_placed_generators_have_exact_gradients_for_a_batch_of_one(registry, copies):
    """Canary: torch's CPU instance norm returns wrong input gradients for a channels-last batch of one
    image (a CycleGAN step's cycle pass at the reference's batch 1): weight gradients of a ResNet
    generator were off by more than 100%. The networks a translator places on the CPU (alone or as a
    model stack) must match a float64 reference."""
    from benchbias.nets.networks import layout_safe_norms

    torch.manual_seed(0)
    net = resnet_generator(filters=8, blocks=2)
    init_weights(net)
    x, probe = torch.randn(1, 1, 32, 32), torch.randn(1, 1, 32, 32)
    reference = copy.deepcopy(net).double()
    (reference(x.double()) * probe.double()).sum().backward()
    t = translator(registry, "l1")
    t.rngs = [torch.Generator()] * copies
    placed = t.place(copy.deepcopy(net))
    if copies == 1:
        (placed(x) * probe).sum().backward()
        grads = {name: p.grad for name, p in placed.named_parameters()}
    else:
        (placed(x.expand(copies, *x.shape).contiguous()) * probe).sum().backward()
        grads = {name: g[copies - 1] for name, g in placed.stacked(grads=True).items()}
    for name, p in reference.named_parameters():
        if name.endswith("bias") and p.grad.abs().max() < 1e-6:  # a bias before a norm: its gradient is 0
            continue
        error = (grads[name].double() - p.grad).abs().max() / p.grad.abs().max()
        assert error < 1e-4, (name, float(error))
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in placed.modules())
    # The replacement is the same function (outputs equal up to float rounding).
    swapped = layout_safe_norms(copy.deepcopy(net))
    torch.testing.assert_close(swapped(x), net(x), rtol=1e-5, atol=1e-6)
