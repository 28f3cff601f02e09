"""The public API of benchbias plugins: everything a translator, classifier, metric or data layout
plugin imports, from one place.

A plugin file (or an installed package's entry point in group ``benchbias``) implements one or more
of the hooks with :data:`hookimpl` and registers its classes::

    from benchbias.api import NetworkTranslator, hookimpl, l1_loss, optimise

    class Mine(NetworkTranslator):
        name = "mine"
        paired = True

        def build(self):
            self.generator = self.new_generator()
            self.opt = self.adam(self.generator)

        def training_step(self, source, target, ctx):
            with ctx.autocast():
                loss = l1_loss(self.generator(source), target)
            optimise(self.opt, loss)
            return {"l1": loss.detach()}

    @hookimpl
    def register_translators(register):
        register(Mine)

What the names are:

* the contract: :class:`Translator`, :class:`Classifier`, :class:`Metric`, :class:`DatasetLayout`,
  their parameters (:class:`Param`, :class:`ParamError`), what the runner hands them
  (:class:`TrainContext`, :class:`PairedSlices`, :class:`UnpairedDomains`, :class:`Evidence`,
  :class:`Case`) and what a metric declares (:class:`Score`);
* network translators: :class:`NetworkTranslator` and :class:`AdversarialTranslator` (the shared
  training loop), :func:`adversarial_params`, :data:`GENERATOR_PARAMS`, :data:`SERIAL_BATCHES`, :class:`OwnParams` and
  :func:`shared_params` (a plugin that declares only the parameters it uses), :func:`frozen`,
  :func:`optimise`, :func:`l1_loss`, :class:`ModelStack` (models trained together), GAN losses and
  history pools, and the networks of the baselines;
* the image scale: :func:`to_network` and :func:`to_unit` convert images between the [0, 1] slice
  scale and the range networks see;
* classifiers: :class:`IntensityAugmentation`, the judge's training-time augmentation, and
  :func:`gradient_attack`, what anyone holding a judge's weights can do to its calls, and
  :func:`with_adversarial_examples`, a training batch for a judge trained to resist it;
* data layouts: :class:`ScanningLayout`, :class:`LabelRules` and their helpers, :class:`DataError`.
"""

from benchbias import hookimpl
from benchbias.data.errors import DataError
from benchbias.data.scanning import (
    CANONICAL_MODALITIES,
    LabelRules,
    ScanningLayout,
    canonical_modality,
    check_labels,
    hidden,
    normalise_name,
    unknown_modality,
)
from benchbias.foundation.contract import (
    Case,
    Classifier,
    Configurable,
    DatasetLayout,
    Evidence,
    Metric,
    PairedSlices,
    Param,
    ParamError,
    TrainContext,
    Translator,
    UnpairedDomains,
)
from benchbias.foundation.scoretable import Score
from benchbias.judges.robustness import IntensityAugmentation, gradient_attack, with_adversarial_examples
from benchbias.nets.image_pool import ImagePool, PoolStack
from benchbias.nets.losses import GAN_MODES, GANLoss
from benchbias.nets.networks import impartial_cnn, init_weights, patch_discriminator, resnet_generator
from benchbias.nets.own_params import OwnParams, shared_params
from benchbias.nets.scale import to_network, to_unit
from benchbias.nets.translation import (
    GENERATOR_PARAMS,
    SERIAL_BATCHES,
    AdversarialTranslator,
    ModelStack,
    NetworkTranslator,
    adversarial_params,
    frozen,
    l1_loss,
    optimise,
    set_requires_grad,
)

__all__ = [
    # hooks
    "hookimpl",
    # the contract
    "Translator",
    "Classifier",
    "Metric",
    "DatasetLayout",
    "Configurable",
    "Param",
    "ParamError",
    "TrainContext",
    "PairedSlices",
    "UnpairedDomains",
    "Evidence",
    "Case",
    "Score",
    # network translators
    "NetworkTranslator",
    "AdversarialTranslator",
    "ModelStack",
    "GENERATOR_PARAMS",
    "SERIAL_BATCHES",
    "adversarial_params",
    "OwnParams",
    "shared_params",
    "frozen",
    "optimise",
    "l1_loss",
    "set_requires_grad",
    "GANLoss",
    "GAN_MODES",
    "ImagePool",
    "PoolStack",
    # networks
    "resnet_generator",
    "patch_discriminator",
    "impartial_cnn",
    "init_weights",
    # the image scale
    "to_network",
    "to_unit",
    # classifiers
    "IntensityAugmentation",
    "gradient_attack",
    "with_adversarial_examples",
    # data layouts
    "ScanningLayout",
    "LabelRules",
    "DataError",
    "CANONICAL_MODALITIES",
    "canonical_modality",
    "check_labels",
    "hidden",
    "normalise_name",
    "unknown_modality",
]
