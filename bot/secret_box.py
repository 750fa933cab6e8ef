"""Sealing the TOTP secrets at rest with MFA_ENCRYPTION_KEY (a file holding a 32-byte key, base64).

Rules kept here:
- The key lives outside the database: read from its file once at start-up, refused there in one line when the
  file is missing, unreadable or not 32 bytes of base64 (the message names the file, never its content).
- A secret is sealed with AES-256-GCM (the `cryptography` package's AESGCM), a fresh 96-bit nonce each time, and
  the owner's Slack user id as associated data: a database administrator who copies one person's sealed secret
  onto another's row gets a row that does not open.
- `keygen` writes a new key file with mode 0600 and never overwrites one.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_PREFIX = "v1:"
KEYGEN_HINT = "`python -m bot mfa keygen --out FILE` writes one"


class KeyFileError(Exception):
    """MFA_ENCRYPTION_KEY's file cannot be used; the message says why and never shows the key."""


class SealBroken(Exception):
    """A sealed secret does not open with this key for this person (another key, or a row changed by hand)."""


def read_key_file(path_text: str, name: str = "MFA_ENCRYPTION_KEY") -> bytes:
    path = Path(path_text).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{name}: the file {path} does not exist; {KEYGEN_HINT}") from None
    except OSError as error:
        raise KeyFileError(
            f"{name}: cannot read {path} ({error.strerror}); make it readable by the bot's user"
        ) from None
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{name}: {path} does not hold base64 text; {KEYGEN_HINT}") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{name}: {path} holds {len(key)} bytes, not {KEY_BYTES}; {KEYGEN_HINT}")
    return key


def keygen(path: Path) -> None:
    """A new random key, base64, written to `path` with mode 0600 (created exclusively: an existing file is kept)."""
    text = base64.b64encode(os.urandom(KEY_BYTES)) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text)
    finally:
        os.close(fd)


class SecretBox:
    """Seals and opens one person's secret with the key (see the module docstring)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the key must be 32 bytes")
        # Imported here, not at the top: settings read key files through this module, and `--help` stays cheap.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, secret: str, owner: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), owner.encode("utf-8"))
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, owner: str) -> str:
        from cryptography.exceptions import InvalidTag

        if not sealed.startswith(SEALED_PREFIX):
            raise SealBroken("not a sealed secret")
        try:
            data = base64.b64decode(sealed[len(SEALED_PREFIX) :], validate=True)
            plain = self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], owner.encode("utf-8"))
        except (binascii.Error, ValueError, InvalidTag):
            raise SealBroken("the sealed secret does not open with this key for this person") from None
        return plain.decode("utf-8")
