"""The judges: a benchmark's pinned classifier (weights identified by their sha256), the segmentation
judge, the judge's robustness, and a run's panel of judges."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "robustness": ["IntensityAugmentation", "benign_perturbations", "robustness_table"],
        "pinned": ["JudgeError", "JudgeFiles"],
        "segmenter": ["TumorSegmenter"],
        "panel": ["Judge", "judges_of"],
    },
)
