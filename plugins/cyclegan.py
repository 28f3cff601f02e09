"""CycleGAN (unpaired; Zhu et al. 2017): two generators, two discriminators, cycle consistency.

    Discriminator loss (max): E_b [log D_b(b)] + E_a [log(1 - D_b(f_ab(a)))]        (and D_a likewise)
    Generator loss (min):     E_a [-log D_b(f_ab(a)) + |f_ba(f_ab(a)) - a|]          (and f_ba likewise)

As in the CycleGAN reference code: least-squares GAN loss (``gan_mode="lsgan"``; "vanilla" is the
log-loss written above), cycle terms weighted ``lambda_cycle`` = 10 in both directions, identity terms
``lambda_cycle * lambda_identity * |f_ab(b) - b|`` (and ``|f_ba(a) - a|``), the discriminators shown
a history of ``pool_size`` = 50 generated images, and their loss halved. Generator step first, then
the discriminator step on the same (detached) fakes.
"""

import torch

from benchbias.api import AdversarialTranslator, Param, adversarial_params, frozen, hookimpl, l1_loss, optimise


class CycleGAN(AdversarialTranslator):
    name = "cyclegan"
    description = "unpaired; LSGAN + cycle consistency + identity, PatchGAN, 50-image pool (Cohen et al. 2018, Table 1)"
    paired = False
    trains_together = True  # training_step works on one model or a stack (translation.py)
    params = adversarial_params(
        "lsgan",
        lambda_cycle=Param(10.0, "weight of each cycle-consistency L1 term", minimum=0.0),
        lambda_identity=Param(0.5, "identity-loss weight, as a fraction of lambda_cycle (0: off)", minimum=0.0),
        pool_size=Param(50, "generated images kept for the discriminators (0: none)", minimum=0),
    )

    def build(self) -> None:
        self.generator = self.new_generator()  # f_ab: source -> target, the translator
        self.generator_ba = self.new_generator()  # f_ba: target -> source
        self.disc_b, self.disc_a = self.new_discriminator(), self.new_discriminator()
        self.g_optimizer = self.adam(self.generator, self.generator_ba)
        self.d_optimizer = self.adam(self.disc_a, self.disc_b)
        self.pool_b, self.pool_a = self.new_pool(self.hparams["pool_size"]), self.new_pool(self.hparams["pool_size"])

    def training_step(self, a, b, ctx) -> dict[str, torch.Tensor]:
        cycle, identity = self.hparams["lambda_cycle"], self.hparams["lambda_cycle"] * self.hparams["lambda_identity"]
        if identity > 0:  # f_ab(a) and, for the identity term, f_ab(b); f_ba likewise
            (fake_b, same_b), (fake_a, same_a) = in_one_batch(self.generator, a, b), in_one_batch(self.generator_ba, b, a)
        else:
            fake_b, fake_a = self.generator(a), self.generator_ba(b)
        with frozen(self.disc_a, self.disc_b):
            terms = {
                "gan_ab": self.adversarial_loss(self.disc_b, fake_b),
                "gan_ba": self.adversarial_loss(self.disc_a, fake_a),
                "cycle_a": l1_loss(self.generator_ba(fake_b), a),
                "cycle_b": l1_loss(self.generator(fake_a), b),
            }
            g = terms["gan_ab"] + terms["gan_ba"] + cycle * (terms["cycle_a"] + terms["cycle_b"])
            if identity > 0:
                terms["identity_ab"] = l1_loss(same_b, b)
                terms["identity_ba"] = l1_loss(same_a, a)
                g = g + identity * (terms["identity_ab"] + terms["identity_ba"])
            optimise(self.g_optimizer, g)
        terms["d_b"] = self.discriminator_loss(self.disc_b, b, self.pool_b.query(fake_b))
        terms["d_a"] = self.discriminator_loss(self.disc_a, a, self.pool_a.query(fake_a))
        optimise(self.d_optimizer, terms["d_a"] + terms["d_b"])
        return {"g": g, **terms}


def in_one_batch(generator: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``generator(x), generator(y)`` as one call: instance norm normalises each image on its own, so
    this is the same function at a lower cost (1.2x per step at synthetic-quick's batch of 4 on a CPU).
    Batches are concatenated at ``dim=-4``, before any leading model axis."""
    return generator(torch.cat([x, y], -4)).split([x.shape[-4], y.shape[-4]], -4)


@hookimpl
def register_translators(register):
    register(CycleGAN)
