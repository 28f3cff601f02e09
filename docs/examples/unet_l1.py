"""A U-Net translator (paired, L1): one's own network on benchbias's training loop.

Use it from a folder of plugin files: benchbias run synthetic-smoke --plugin-dir docs/examples --translator unet-l1
"""

import torch
from monai.networks.nets import UNet
from torch import nn

from benchbias.api import NetworkTranslator, OwnParams, Param, TrainContext, hookimpl, l1_loss, optimise, shared_params


class UNetL1(OwnParams, NetworkTranslator):
    """OwnParams first: the parameters below are all this method has. The shared loop's settings it
    leaves out (beta1, decay_fraction, ...) stay at the baselines' defaults; the ResNet generator's
    filters, blocks and dropout do not exist here."""

    name = "unet-l1"
    description = "paired; MONAI U-Net trained with L1 (example of a plugin's own network)"
    paired = True
    params = shared_params(
        "batch_size",
        "lr",
        channels=Param(16, "channels of the U-Net's first level (doubled at each of its 3 levels)", minimum=1),
    )

    def build(self) -> None:
        c = self.hparams["channels"]
        unet = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(c, 2 * c, 4 * c), strides=(2, 2))
        # self.generator is what translate() runs; place() puts it on self.device (the run's device;
        # a stack of copies when the runner trains several fractions' models together). tanh keeps
        # the output in the network range [-1, 1].
        self.generator = self.place(nn.Sequential(unet, nn.Tanh()))
        self.optimizer = self.adam(self.generator)  # Adam with lr and beta1, under the shared lr schedule

    def training_step(self, source: torch.Tensor, target: torch.Tensor, ctx: TrainContext) -> dict[str, torch.Tensor]:
        loss = l1_loss(self.generator(source), target)
        optimise(self.optimizer, loss)  # zero_grad, backward, step
        return {"l1": loss}  # shown on the progress bar, and kept as each cell's loss curve


@hookimpl
def register_translators(register):
    register(UNetL1)
