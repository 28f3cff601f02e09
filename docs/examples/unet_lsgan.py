"""A U-Net generator against a PatchGAN critic, with an L1 term (paired; pix2pix's objective with
one's own generator): the adversarial helpers on a plugin's own network.

Use it from a folder of plugin files: benchbias run synthetic-smoke --plugin-dir docs/examples --translator unet-lsgan
"""

import torch
from monai.networks.nets import UNet
from torch import nn

from benchbias.api import AdversarialTranslator, OwnParams, Param, TrainContext, frozen, hookimpl, l1_loss, optimise, shared_params


class UNetLSGAN(OwnParams, AdversarialTranslator):
    name = "unet-lsgan"
    description = "paired; MONAI U-Net + PatchGAN (least squares) + L1 (example of the adversarial helpers)"
    paired = True
    params = shared_params(
        "batch_size",
        "lr",
        "disc_filters",  # the PatchGAN's width: new_discriminator() reads it
        gan_mode=Param("lsgan", "GAN loss: 'lsgan' (least squares) or 'vanilla' (log-loss)", choices=("lsgan", "vanilla")),
        channels=Param(16, "channels of the U-Net's first level", minimum=1),
        lambda_l1=Param(100.0, "weight of the L1 term against the adversarial one", minimum=0.0),
    )

    def build(self) -> None:
        c = self.hparams["channels"]
        unet = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(c, 2 * c, 4 * c), strides=(2, 2))
        self.generator = self.place(nn.Sequential(unet, nn.Tanh()))  # on self.device
        # The critic sees (source, translation) pairs: two channels. new_discriminator() places it too.
        self.disc = self.new_discriminator(in_channels=2)
        self.opt_g = self.adam(self.generator)
        self.opt_d = self.adam(self.disc)

    def training_step(self, source: torch.Tensor, target: torch.Tensor, ctx: TrainContext) -> dict[str, torch.Tensor]:
        fake = self.generator(source)
        # Generator step: the critic is fixed (frozen passes gradients to fake, computes none for its weights).
        with frozen(self.disc):
            gan = self.adversarial_loss(self.disc, torch.cat([source, fake], -3))  # channels are dim -3
        l1 = l1_loss(fake, target)
        g = gan + self.hparams["lambda_l1"] * l1
        optimise(self.opt_g, g)
        # Critic step: real pairs called real, generated pairs (detached inside) called fake; halved.
        d = self.discriminator_loss(self.disc, torch.cat([source, target], -3), torch.cat([source, fake], -3))
        optimise(self.opt_d, d)
        return {"g": g, "gan": gan, "l1": l1, "d": d}


@hookimpl
def register_translators(register):
    register(UNetLSGAN)
