"""Medical image data: layouts of real data sets, the synthetic data set, reading cases through MONAI
into labelled axial slices, and the prepared-slice cache."""
from benchbias.errors import BenchbiasError


class DataError(BenchbiasError, ValueError):
    """A data set, case or file is unusable; the message names it."""
