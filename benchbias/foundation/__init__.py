"""The foundation every layer builds on: one-line errors, JSON files, benchmark files and their
hashes, the score table, the plugin contract, hooks and registry, and code identities.

Nothing here knows about data, networks or runs; plugin authors use :mod:`benchbias.api`."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "errors": ["BenchbiasError"],
        "jsonio": ["OutOfSpace", "dumps", "read_json", "write_atomically", "write_json"],
        "config": [
            "Benchmark",
            "ClassifierConfig",
            "ConfigError",
            "DatasetConfig",
            "DomainConfig",
            "ModelConfig",
            "SliceConfig",
            "SplitConfig",
            "SynthSpec",
            "protocol_of",
            "stable_hash",
            "with_translators",
        ],
        "benchmark_files": ["benchmark_dirs", "find_benchmark", "load_benchmark", "parse_benchmark", "read_yaml"],
        "scoretable": ["Score", "ScoreTable"],
        "contract": [
            "Case",
            "Classifier",
            "Configurable",
            "DatasetLayout",
            "Evidence",
            "Metric",
            "PairedSlices",
            "Param",
            "ParamError",
            "TrainContext",
            "Translator",
            "UnpairedDomains",
        ],
        "registry": ["Origin", "PluginError", "Registered", "Registry", "load_registry"],
        "code_identity": ["classes_sha256", "module_sha256", "modules_sha256"],
    },
)
