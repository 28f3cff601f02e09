"""Benchmark definitions, one YAML file each; a package only so that they install with benchbias."""
