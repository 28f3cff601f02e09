"""Medical image data: layouts of real data sets, the synthetic data set, reading cases through MONAI
into labelled axial slices, the prepared-slice cache, and the sweep protocol's split and domains."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "errors": ["DataError"],
        "slice_set": ["SliceSet"],
        "scanning": ["LabelRules", "ScanningLayout"],
        "synthetic": ["generate_subject"],
        "synthetic_files": ["write_dataset"],
        "slice_cache": ["PreparedSlices", "prepare_slices"],
        "sources": ["BenchmarkData", "benchmark_data", "cache_dir"],
        "protocol": ["ProtocolError", "Split", "check_capacity", "split_subjects"],
    },
)
