"""pix2pix (paired; Isola et al. 2017): the conditional GAN of CondGAN plus an L1 term.

    Discriminator loss (max): E_(a,b) [log D(b, a)] + E_a [log(1 - D(f_ab(a), a))]
    Generator loss (min):     E_(a,b) [-log D(f_ab(a), a) + lambda_l1 ||f_ab(a) - b||_1],  lambda_l1 = 100

Not a row of Table 1 but the combination of its CondGAN and L1 rows. As in the pix2pix code:
log-loss (``gan_mode="vanilla"``, BCE on logits), source and image concatenated on channels,
discriminator loss halved, discriminator step then generator step. The generator is the shared
ResNet generator (the pix2pix code defaults to a U-Net).
"""

import torch

from benchbias.api import SERIAL_BATCHES, AdversarialTranslator, Param, adversarial_params, frozen, hookimpl, l1_loss, optimise


class Pix2Pix(AdversarialTranslator):
    name = "pix2pix"
    description = "paired; conditional GAN on (source, image) pairs + 100 x L1"
    paired = True
    trains_together = True  # training_step works on one model or a stack (translation.py)
    params = adversarial_params("vanilla", lambda_l1=Param(100.0, "weight of the L1 term", minimum=0.0), serial_batches=SERIAL_BATCHES)

    def build(self) -> None:
        self.generator = self.new_generator()
        self.disc = self.new_discriminator(in_channels=2)
        self.g_optimizer = self.adam(self.generator)
        self.d_optimizer = self.adam(self.disc)

    def training_step(self, a, b, ctx) -> dict[str, torch.Tensor]:
        fake_b = self.generator(a)
        d = self.discriminator_loss(self.disc, torch.cat([a, b], -3), torch.cat([a, fake_b], -3))
        optimise(self.d_optimizer, d)
        with frozen(self.disc):
            gan = self.adversarial_loss(self.disc, torch.cat([a, fake_b], -3))
            l1 = l1_loss(fake_b, b)
            g = gan + self.hparams["lambda_l1"] * l1
            optimise(self.g_optimizer, g)
        return {"g": g, "gan": gan, "l1": l1, "d": d}


@hookimpl
def register_translators(register):
    register(Pix2Pix)
