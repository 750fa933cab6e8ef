"""Ed25519 keys for audit checkpoints: loading, key ids, signing and checking signatures.

Rules this module keeps:
- the private key never lives in the database; it comes from AUDIT_SIGNING_KEY (PEM text or a PEM file's path);
- a public key travels as one line, `ed25519:<base64 of the 32 raw bytes>`, or as a PEM file;
- a key id is the first 16 hex digits of SHA-256 over the raw public key, so anyone holding the public key can
  compute it and nobody can pick a key id for a key they do not hold;
- error messages never contain key material.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBLIC_PREFIX = "ed25519:"


class KeyLoadError(ValueError):
    """A key could not be loaded; the message says why without showing the key."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_text(key: Ed25519PublicKey) -> str:
    """The one-line form AUDIT_VERIFY_KEYS and `--public-key` accept."""
    return PUBLIC_PREFIX + base64.b64encode(_raw_public(key)).decode("ascii")


@dataclass(frozen=True)
class Signer:
    """The bot's signing key and its public half."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode("ascii")

    def __repr__(self) -> str:  # never the key itself
        return f"Signer(key_id={self.key_id!r})"


def _pem_text(value: str, what: str) -> bytes:
    """PEM text as given, or read from the file `value` names."""
    text = value.strip()
    if "-----BEGIN" in text:
        return text.replace("\\n", "\n").encode("ascii", errors="replace")
    path = Path(text).expanduser()
    if not path.is_file():
        raise KeyLoadError(f"{what}: neither PEM text nor the path of a readable file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyLoadError(f"{what}: cannot read the file ({error.strerror})") from None


def load_signer(value: str, what: str = "AUDIT_SIGNING_KEY") -> Signer:
    """An unencrypted Ed25519 private key in PKCS#8 PEM (what `audit keygen` writes)."""
    data = _pem_text(value, what)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyLoadError(f"{what}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyLoadError(f"{what}: not an Ed25519 key (make one with `python -m bot audit keygen --out FILE`)")
    return Signer(key)


def load_public_key(value: str, what: str = "AUDIT_VERIFY_KEYS") -> Ed25519PublicKey:
    """`ed25519:<base64>`, PEM public key text, or the path of a PEM file (public or private)."""
    text = value.strip()
    if text.startswith(PUBLIC_PREFIX):
        try:
            raw = base64.b64decode(text[len(PUBLIC_PREFIX) :], validate=True)
            return Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise KeyLoadError(f"{what}: {text[:60]!r} is not a valid ed25519:<base64> public key") from None
    data = _pem_text(text, what)
    if b"PRIVATE KEY" in data:
        return load_signer(text, what).public
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyLoadError(f"{what}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyLoadError(f"{what}: not an Ed25519 public key")
    return key


def split_key_list(raw: str) -> list[str]:
    """AUDIT_VERIFY_KEYS: comma- or whitespace-separated one-line keys and PEM file paths."""
    return [item for item in raw.replace(",", " ").split() if item]


def verify_signature(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def generate_key_file(path: Path) -> Signer:
    """A new private key written to `path` with mode 0600 (created exclusively: an existing file is kept)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
    finally:
        os.close(fd)
    return Signer(key)
