"""Messages between the runner and a sandboxed child: one ``.npz`` of plain numeric arrays plus a JSON
header, in each direction. Nothing is pickled: what comes back from plugin code is read with
``allow_pickle=False`` and checked field by field, so a hostile child can send wrong numbers but
cannot run code in the runner.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from benchbias.foundation.errors import BenchbiasError

HEADER = "__header__"
MAX_HEADER_BYTES = 4 << 20


class WireError(BenchbiasError, ValueError):
    """A message from the sandbox that is not what the protocol allows."""


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    if HEADER in arrays:
        raise ValueError(f"{HEADER} is reserved")
    encoded = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    handle = io.BytesIO()
    np.savez(handle, **{HEADER: encoded}, **arrays)
    return handle.getvalue()


def unpack(message: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of ``message``; :class:`WireError` for anything malformed."""
    try:
        with np.load(io.BytesIO(message), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise WireError(f"not an array message ({type(exc).__name__})") from None
    raw = arrays.pop(HEADER, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_HEADER_BYTES:
        raise WireError("the message has no valid header")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WireError("the message's header is not JSON") from None
    if not isinstance(header, dict):
        raise WireError("the message's header is not a JSON object")
    return header, arrays
