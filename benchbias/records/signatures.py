"""Ed25519 signatures of verified leaderboard entries (``cryptography``).

``benchbias leaderboard verify`` re-runs part of an entry and, when it reproduces, adds a
``verification`` record to the entry, signed with the maintainers' private key. The signature covers
the entry as submitted (every field but ``verification``) together with the record, written as
canonical JSON; editing either afterwards breaks it. Boards are checked against the public keys in
``maintainers.pub`` beside the leaderboard files (:func:`trusted_keys`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from benchbias.foundation.errors import BenchbiasError

VERIFICATION = "verification"  # the entry field that holds the signed record
KEYS_FILE = "maintainers.pub"  # beside the leaderboard files: the public keys whose signatures count


class SigningKeyError(BenchbiasError, ValueError):
    """A key file cannot be read as what it should hold."""


def canonical(value: Any) -> bytes:
    """The one byte string of a JSON value that is signed: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def signed_bytes(entry: dict[str, Any], record: dict[str, Any]) -> bytes:
    """What a signature covers: the entry without its verification, and the record without its signature."""
    body = {k: v for k, v in entry.items() if k != VERIFICATION}
    return canonical({"entry": body, "verification": {k: v for k, v in record.items() if k != "signature"}})


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def new_key_pair() -> tuple[bytes, bytes]:
    """A fresh signing key: (private key PEM, public key PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return private_pem, private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path}: not an unencrypted PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 private key")
    return key


def trusted_keys(folder: Path) -> dict[str, Ed25519PublicKey]:
    """The public keys in ``folder/maintainers.pub`` (PEM blocks, one per key) by key id; none when
    the file does not exist."""
    path = Path(folder) / KEYS_FILE
    if not path.is_file():
        return {}
    keys = {}
    for block in path.read_text().split("-----END PUBLIC KEY-----")[:-1]:
        try:
            key = serialization.load_pem_public_key((block.strip() + "\n-----END PUBLIC KEY-----\n").encode())
        except ValueError:
            raise SigningKeyError(f"{path}: a block is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{path}: a key is not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def sign(entry: dict[str, Any], record: dict[str, Any], private: Ed25519PrivateKey) -> dict[str, Any]:
    """``record`` with the signing key's id and the signature of it and ``entry``."""
    record = {**record, "key_id": key_id(private.public_key())}
    return {**record, "signature": base64.b64encode(private.sign(signed_bytes(entry, record))).decode()}


def signature_problem(entry: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> str | None:
    """Why ``entry``'s verification does not hold (None when it does, or when it has none)."""
    record = entry.get(VERIFICATION)
    if record is None:
        return None
    key = keys.get(record.get("key_id", ""))
    if key is None:
        return f"signed with key {record.get('key_id')!r}, which is not in {KEYS_FILE}"
    try:
        key.verify(base64.b64decode(record.get("signature", ""), validate=True), signed_bytes(entry, record))
    except (InvalidSignature, ValueError):
        return "its signature does not match the entry (edited after it was verified?)"
    return None
