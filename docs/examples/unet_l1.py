"""A U-Net translator (paired, L1): one's own network on benchbias's training loop.

Use it from a folder of plugin files: benchbias run synthetic-smoke --plugin-dir docs/examples --translator unet-l1
"""

import torch
from monai.networks.nets import UNet
from torch import nn

from benchbias.api import GENERATOR_PARAMS, NetworkTranslator, Param, TrainContext, hookimpl, l1_loss, optimise

# What NetworkTranslator's loop reads: the batch size, Adam's settings, the lr schedule and whether
# dropout stays on at translation. (filters, blocks and dropout belong to its ResNet generator.)
LOOP_PARAMS = {k: GENERATOR_PARAMS[k] for k in ("batch_size", "lr", "beta1", "decay_fraction", "dropout_at_translation")}


class UNetL1(NetworkTranslator):
    name = "unet-l1"
    description = "paired; MONAI U-Net trained with L1 (example of a plugin's own network)"
    paired = True
    params = {
        **LOOP_PARAMS,
        "channels": Param(16, "channels of the U-Net's first level (doubled at each of its 3 levels)", minimum=1),
    }

    def build(self) -> None:
        c = self.hparams["channels"]
        unet = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(c, 2 * c, 4 * c), strides=(2, 2))
        # self.generator is what translate() runs; place() puts it on self.device (the run's device).
        # tanh keeps the output in the network range [-1, 1].
        self.generator = self.place(nn.Sequential(unet, nn.Tanh()))
        self.optimizer = self.adam(self.generator)  # Adam with lr and beta1, under the shared lr schedule

    def training_step(self, source: torch.Tensor, target: torch.Tensor, ctx: TrainContext) -> dict[str, torch.Tensor]:
        loss = l1_loss(self.generator(source), target)
        optimise(self.optimizer, loss)  # zero_grad, backward, step
        return {"l1": loss}  # shown on the progress bar


@hookimpl
def register_translators(register):
    register(UNetL1)
