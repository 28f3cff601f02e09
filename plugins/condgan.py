"""CondGAN (paired; Mirza & Osindero 2014, Isola et al. 2017): the discriminator judges (image, source) pairs.

    Discriminator loss (max): E_(a,b) [log D(b, a)] + E_a [log(1 - D(f_ab(a), a))]
    Generator loss (min):     E_a [-log D(f_ab(a), a)]

The pix2pix model without its L1 term: the paper's CondGAN run set the L1 weight to 0 (``lambda_l1``
= 0; raise it and this becomes pix2pix). Source and image concatenated on channels, discriminator
loss halved, discriminator step then generator step as in the pix2pix code.

Defaults: the log-loss Table 1 writes (``gan_mode="vanilla"``, BCE on logits) and no history pool.
The paper's actual run (``run-cond.sh`` through the CycleGAN repository's ``pix2pix_model.py``)
used least squares (``gan_mode="lsgan"``) and a 50-pair history pool of generated (source, image)
pairs (``pool_size=50``): the ``brats2013-paper`` benchmark sets both.
"""

import torch

from benchbias.api import SERIAL_BATCHES, AdversarialTranslator, Param, adversarial_params, frozen, hookimpl, l1_loss, optimise


class CondGAN(AdversarialTranslator):
    name = "condgan"
    description = "paired; conditional GAN loss on (source, image) pairs, no L1 (Cohen et al. 2018, Table 1)"
    paired = True
    trains_together = True  # training_step works on one model or a stack (translation.py)
    params = adversarial_params(
        "vanilla",
        lambda_l1=Param(0.0, "weight of an added L1 term (paper: 0)", minimum=0.0),
        pool_size=Param(0, "generated (source, image) pairs kept for the discriminator (0: none; the paper's run: 50)", minimum=0),
        serial_batches=SERIAL_BATCHES,
    )

    def build(self) -> None:
        self.generator = self.new_generator()
        self.disc = self.new_discriminator(in_channels=2)
        self.g_optimizer = self.adam(self.generator)
        self.d_optimizer = self.adam(self.disc)
        self.pool = self.new_pool(self.hparams["pool_size"]) if self.hparams["pool_size"] else None

    def training_step(self, a, b, ctx) -> dict[str, torch.Tensor]:
        fake_b = self.generator(a)
        fake_pair = torch.cat([a, fake_b], -3)
        d = self.discriminator_loss(self.disc, torch.cat([a, b], -3), self.pool.query(fake_pair) if self.pool is not None else fake_pair)
        optimise(self.d_optimizer, d)
        with frozen(self.disc):
            terms = {"gan": self.adversarial_loss(self.disc, torch.cat([a, fake_b], -3))}
            g = terms["gan"]
            if self.hparams["lambda_l1"] > 0:
                terms["l1"] = l1_loss(fake_b, b)
                g = g + self.hparams["lambda_l1"] * terms["l1"]
            optimise(self.g_optimizer, g)
        return {"g": g, **terms, "d": d}


@hookimpl
def register_translators(register):
    register(CondGAN)
