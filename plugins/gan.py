"""GAN (unpaired; Goodfellow et al. 2014): the first row of Table 1, distribution matching only.

    Discriminator loss (max): E_b [log D(b)] + E_a [log(1 - D(f_ab(a)))]
    Generator loss (min):     E_a [-log D(f_ab(a))]

An unconditional PatchGAN discriminator sees real target slices and translations; nothing ties the
output to its source. Log-loss as in Table 1 (``gan_mode="vanilla"``, BCE on logits; "lsgan" is an
option), discriminator loss halved, generator step then discriminator step as in the CycleGAN code.
"""

import torch

from benchbias.api import AdversarialTranslator, adversarial_params, frozen, hookimpl, optimise


class GAN(AdversarialTranslator):
    name = "gan"
    description = "unpaired; unconditional GAN loss only, nothing ties output to source (Cohen et al. 2018, Table 1)"
    paired = False
    trains_together = True  # training_step works on one model or a stack (translation.py)
    params = adversarial_params("vanilla")

    def build(self) -> None:
        self.generator = self.new_generator()
        self.disc = self.new_discriminator()
        self.g_optimizer = self.adam(self.generator)
        self.d_optimizer = self.adam(self.disc)

    def training_step(self, a, b, ctx) -> dict[str, torch.Tensor]:
        fake_b = self.generator(a)
        with frozen(self.disc):
            g = self.adversarial_loss(self.disc, fake_b)
            optimise(self.g_optimizer, g)
        d = self.discriminator_loss(self.disc, b, fake_b)
        optimise(self.d_optimizer, d)
        return {"g": g, "d": d}


@hookimpl
def register_translators(register):
    register(GAN)
