"""Ed25519 signatures of the claim record: ``--sign-key`` signs claim.json, ``modmsg verify --public-key`` checks it.

The signature is detached (claim.json.sig: the 64-byte Ed25519 signature of claim.json's exact bytes, base64, one
line). ``cryptography`` is imported only here and only when a key is used, so a run that signs nothing never
loads it. A key that cannot be used is one sentence (:class:`SigningError`) naming the file, never its content.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SigningError(ValueError):
    """A key file that cannot be read or is not an Ed25519 key; one sentence."""


@dataclass(frozen=True)
class SigningKey:
    """A loaded Ed25519 private key; its repr never shows the key."""

    key: Any = field(repr=False)

    def sign(self, data: bytes) -> str:
        """The detached signature of ``data``: base64 of the 64 signature bytes, and a newline."""
        return base64.b64encode(self.key.sign(data)).decode("ascii") + "\n"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"the {what} {path} cannot be read: {exc.strerror or exc}") from None


def load_signing_key(path: Path) -> SigningKey:
    """The Ed25519 private key in the PEM file at ``path``; SigningError (one sentence) otherwise."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read(path, "signing key")
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:  # a passphrase-protected key
        raise SigningError(f"the signing key {path} is encrypted; give an unencrypted Ed25519 PEM key") from None
    except (ValueError, binascii.Error):
        raise SigningError(f"the signing key {path} is not a PEM private key") from None
    except Exception:  # cryptography's UnsupportedAlgorithm and the like: still a wrong file, one sentence
        raise SigningError(f"the signing key {path} is not a usable PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"the signing key {path} is not an Ed25519 key (it is {_kind(key)})")
    return SigningKey(key)


def load_public_key(path: Path) -> Any:
    """The Ed25519 public key in the PEM file at ``path``; SigningError (one sentence) otherwise."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = _read(path, "public key")
    try:
        key = load_pem_public_key(data)
    except (ValueError, binascii.Error):
        raise SigningError(f"the public key {path} is not a PEM public key") from None
    except Exception:
        raise SigningError(f"the public key {path} is not a usable PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"the public key {path} is not an Ed25519 key (it is {_kind(key)})")
    return key


def signature_problem(public_key: Any, data: bytes, signature: bytes, name: str) -> str | None:
    """None when ``signature`` (claim.json.sig's content) is a valid signature of ``data``; else one sentence."""
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return f"{name} is not a base64 signature"
    try:
        public_key.verify(raw, data)
    except InvalidSignature:
        return f"{name} is not a valid signature of claim.json by this public key (a changed claim or another key)"
    return None


def _kind(key: Any) -> str:
    return type(key).__name__.lstrip("_").removesuffix("PrivateKey").removesuffix("PublicKey") or "another kind"
