"""The hooks a benchbias plugin may implement. Each receives a ``register`` callable and calls it
once per class it contributes; benchbias records where every registration came from."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("benchbias")


@hookspec
def register_translators(register: Callable[[type], None]) -> None:
    """Register :class:`benchbias.api.Translator` subclasses."""


@hookspec
def register_classifiers(register: Callable[[type], None]) -> None:
    """Register :class:`benchbias.api.Classifier` subclasses."""


@hookspec
def register_datasets(register: Callable[[type], None]) -> None:
    """Register :class:`benchbias.api.DatasetLayout` subclasses (folder layouts of MRI cases)."""


@hookspec
def register_metrics(register: Callable[[type], None]) -> None:
    """Register :class:`benchbias.api.Metric` subclasses: scores added to every cell of a run."""
