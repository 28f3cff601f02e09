"""Running a benchmark: the run's inputs, its cells and their files, the executors that compute
them, the results assembled from them, planning a run, and the canaries' selftest."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "options": ["RunOptions", "select_device"],
        "inputs": ["RunData", "RunInputs", "RunPlugins", "plugins_of", "read_data"],
        "cells": ["CellJob", "Program"],
        "executors": ["default_jobs"],
        "runner": ["Run"],
    },
)
