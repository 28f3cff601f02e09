"""Reading a YAML file strictly: every problem is one line naming the file, and where YAML says, the
line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchbias.foundation.config import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"line {mark.line + 1}, column {mark.column + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file strictly: UTF-8 text, valid syntax, no duplicate keys, not empty.
    Every problem is one line naming the file (and the line and column where YAML says)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); a benchmark file is YAML") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: is not a text file (contains NUL bytes); a benchmark file is YAML")
    if not text.strip() or all(line.lstrip().startswith("#") for line in text.splitlines() if line.strip()):
        raise ConfigError(f"{path}: is empty")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: invalid YAML: {where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
