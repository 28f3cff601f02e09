"""L1 (paired): the generator minimises the pixel-wise error to the real target, nothing else.

Discriminator loss: -
Generator loss:     E_(a,b) || f_ab(a) - b ||_1
"""

import torch

from benchbias.api import GENERATOR_PARAMS, SERIAL_BATCHES, NetworkTranslator, hookimpl, l1_loss, optimise


class L1(NetworkTranslator):
    name = "l1"
    description = "paired; pixel-wise L1 only, no distribution matching (Cohen et al. 2018, Table 1)"
    paired = True
    trains_together = True  # training_step works on one model or a stack (translation.py)
    params = {**GENERATOR_PARAMS, "serial_batches": SERIAL_BATCHES}

    def build(self) -> None:
        self.generator = self.new_generator()
        self.optimizer = self.adam(self.generator)

    def training_step(self, source, target, ctx) -> dict[str, torch.Tensor]:
        loss = l1_loss(self.generator(source), target)
        optimise(self.optimizer, loss)
        return {"l1": loss}


@hookimpl
def register_translators(register):
    register(L1)
