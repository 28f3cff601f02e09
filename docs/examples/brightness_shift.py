"""A metric plugin: how much brighter or darker than the real target each translation is.

Use it from a folder of plugin files: benchbias run synthetic-smoke --plugin-dir docs/examples
"""

import numpy as np

from benchbias.api import Evidence, Metric, Score, hookimpl


class BrightnessShift(Metric):
    name = "brightness-shift"
    description = "mean intensity of the translation minus that of the real target"
    scores = (
        Score(
            "brightness_shift",
            "brightness shift",
            "mean of translation minus real target, per slice",
            kind="error",
            bounds=(-1.0, 1.0),
            better="neither",
            sweep=True,
        ),
    )

    def compute(self, e: Evidence) -> dict[str, np.ndarray]:
        # e.translated and e.real are (N, 1, H, W) on the [0, 1] slice scale: one value per holdout slice.
        return {"brightness_shift": (e.translated - e.real).flatten(1).mean(1).double().numpy()}


@hookimpl
def register_metrics(register):
    register(BrightnessShift)
