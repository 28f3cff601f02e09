"""Letting a plugin declare only the hyperparameters it uses.

:class:`~benchbias.nets.translation.NetworkTranslator` and
:class:`~benchbias.nets.translation.AdversarialTranslator` declare the baselines' parameters (the ResNet
generator's ``filters``, ``blocks``, ``dropout``; the PatchGAN's ``disc_*``; the loop's ``batch_size``,
``lr``, ...), and their code reads them. A plugin that brings its own network has no ``blocks``;
offered as parameters, they would be shown, stored and tunable while doing nothing.

A plugin that lists :class:`OwnParams` first among its bases declares what it likes (pick the shared
ones by name with :func:`shared_params`); a shared setting it does not declare is fixed at the
default the baselines declare, is not a parameter of the plugin (not in its results, not settable by
``--param``) and is read by the shared code as that constant.
"""

from __future__ import annotations

from typing import Any

from benchbias.foundation.contract import Param
from benchbias.nets.translation import adversarial_params

SHARED_PARAMS: dict[str, Param] = adversarial_params("vanilla")  # every shared parameter, with the baselines' defaults


def shared_params(*names: str, **own: Param) -> dict[str, Param]:
    """The shared parameters named (e.g. ``"lr", "batch_size"``), with their baseline defaults, and the
    plugin's own. ``gan_mode`` is best declared with the method's default: ``gan_mode=Param("lsgan", ...)``."""
    unknown = sorted(set(names) - set(SHARED_PARAMS))
    if unknown:
        raise ValueError(f"not a shared parameter: {unknown[0]} (shared: {', '.join(SHARED_PARAMS)})")
    return {**{name: SHARED_PARAMS[name] for name in names}, **own}


class FixedDefaults(dict):
    """A plugin's resolved parameters (what it declared, and only that, as items); a shared setting it
    did not declare reads as the baselines' default."""

    def __missing__(self, name: str) -> Any:
        if name in SHARED_PARAMS:
            return SHARED_PARAMS[name].default
        raise KeyError(name)


class OwnParams:
    """Put first among a translator's bases (``class MyNet(OwnParams, NetworkTranslator)``): its
    ``params`` are all it declares, and the shared code reads the shared settings it left out as
    their defaults (:class:`FixedDefaults`)."""

    @property
    def hparams(self) -> FixedDefaults:
        return self._hparams

    @hparams.setter
    def hparams(self, values: dict[str, Any]) -> None:
        self._hparams = FixedDefaults(values)
