"""L1 + SSIM (paired): the L1 baseline plus a structural-similarity term, no distribution matching.

    Discriminator loss: -
    Generator loss:     E_(a,b) [ |f(a) - b|_1 + ssim_weight * (1 - SSIM(f(a), b)) ]

The generator, optimiser, lr schedule, batching, seeding and device come from benchbias's
NetworkTranslator; SSIM is MONAI's. Images arrive in [-1, 1], hence ``data_range=2``.
"""

import torch
import torch.nn.functional as F
from monai.losses import SSIMLoss

from benchbias.api import GENERATOR_PARAMS, NetworkTranslator, Param, hookimpl, optimise


class L1SSIM(NetworkTranslator):
    name = "l1-ssim"
    description = "paired; L1 + (1 - SSIM), no distribution matching (example external plugin)"
    paired = True
    params = {
        **GENERATOR_PARAMS,
        "ssim_weight": Param(0.5, "weight of the 1 - SSIM term", minimum=0.0),
        "ssim_window": Param(7, "side of SSIM's Gaussian window, in pixels", minimum=3),
    }

    def build(self) -> None:
        self.generator = self.new_generator()
        self.optimizer = self.adam(self.generator)
        self.ssim = SSIMLoss(spatial_dims=2, data_range=2.0, win_size=self.hparams["ssim_window"])

    def training_step(self, source, target, ctx) -> dict[str, torch.Tensor]:
        fake = self.generator(source)
        l1, ssim = F.l1_loss(fake, target), self.ssim(fake.float(), target.float())
        loss = l1 + self.hparams["ssim_weight"] * ssim
        optimise(self.optimizer, loss)
        return {"l1": l1, "1-ssim": ssim}


@hookimpl
def register_translators(register):
    register(L1SSIM)
