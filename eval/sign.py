"""Ed25519 keys and signatures for release statements (`cryptography`).

- Keys are PEM files: the private key PKCS#8 (written 0600), the public key SubjectPublicKeyInfo, so
  `openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in statement.json -sigfile statement.sig`
  checks a release without our code.
- A signature file holds the raw 64-byte Ed25519 signature of the exact bytes of `statement.json`.
- The signing key's path comes from `--key` or the COMMONWEIGHTS_SIGNING_KEY environment variable, never
  from the run config: configs are copied into releases and logs, keys must not be.
- A key is named by its id: the sha256 (hex) of the 32 raw public-key bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from commonweights.errors import ConfigError, SigningError

KEY_ENV = "COMMONWEIGHTS_SIGNING_KEY"
ALGORITHM = "ed25519"
SIGNATURE_BYTES = 64


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def keygen(private_path: Path, public_path: Path | None = None, *, force: bool = False) -> dict[str, str]:
    """Write a new key pair: `private_path` (mode 0600) and `public_path` (default: `<private>.pub`)."""
    private_path = Path(private_path)
    public_path = Path(public_path) if public_path else private_path.with_name(private_path.name + ".pub")
    if private_path == public_path:
        raise ConfigError(f"{private_path}: the private and public key paths must differ")
    for p in (private_path, public_path):
        if p.exists() and not force:
            raise ConfigError(f"{p}: already exists; choose another path or pass --force to replace it")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.unlink(missing_ok=True)
    # Created 0600 from the start (never world-readable, not even for an instant), whatever the umask.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(public_pem(key.public_key()))
    return {
        "private_key": str(private_path),
        "public_key": str(public_path),
        "key_id": key_id(key.public_key()),
    }


def load_private(path: Path) -> Ed25519PrivateKey:
    path = Path(path)
    if not path.is_file():
        raise SigningError(f"{path}: signing key not found; make one with `commonweights keygen {path}`")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise SigningError(
            f"{path}: not an unencrypted PEM private key ({e}); make one with `commonweights keygen`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(
            f"{path}: is a {type(key).__name__}, not an Ed25519 key; use `commonweights keygen`"
        )
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: public key not found; pass the publisher's KEY.pub with --key")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"{path}: not a PEM public key ({e}); pass the .pub file that `commonweights keygen` wrote"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: is a {type(key).__name__}, not an Ed25519 public key")
    return key


def signing_key_path(explicit: Path | None = None) -> Path | None:
    """`explicit`, else $COMMONWEIGHTS_SIGNING_KEY, else None (the release is then unsigned)."""
    if explicit is not None:
        return Path(explicit)
    value = os.environ.get(KEY_ENV, "").strip()
    return Path(value) if value else None


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def is_valid(public: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True
