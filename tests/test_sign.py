"""Signing keys and signatures: what `commonweights keygen` writes and how a release gets signed."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_release import make_run

from commonweights.errors import ConfigError, SigningError
from eval import release, sign
from eval.verify import verify


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "commonweights",
            "--format",
            "json",
            "keygen",
            str(tmp_path / "k" / "publisher"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    private, public = Path(rec["private_key"]), Path(rec["public_key"])
    assert public == tmp_path / "k" / "publisher.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert (
        rec["key_id"]
        == sign.key_id(sign.load_public(public))
        == sign.key_id(sign.load_private(private).public_key())
    )
    again = subprocess.run(
        [sys.executable, "-m", "commonweights", "keygen", str(private)], capture_output=True, text=True
    )
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert private.read_bytes() == Path(rec["private_key"]).read_bytes()


def test_signatures_bind_the_exact_bytes_and_the_key(tmp_path: Path) -> None:
    a = sign.keygen(tmp_path / "a")
    b = sign.keygen(tmp_path / "b")
    key = sign.load_private(Path(a["private_key"]))
    sig = sign.sign(key, b"statement")
    assert len(sig) == sign.SIGNATURE_BYTES
    assert sign.is_valid(sign.load_public(Path(a["public_key"])), b"statement", sig)
    assert not sign.is_valid(sign.load_public(Path(a["public_key"])), b"statemenT", sig)
    assert not sign.is_valid(sign.load_public(Path(b["public_key"])), b"statement", sig)
    assert not sign.is_valid(sign.load_public(Path(a["public_key"])), b"statement", sig[:-1])
    assert a["key_id"] != b["key_id"]


def test_bad_key_files_are_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        SigningError, match=r"missing\.pem: signing key not found; make one with `commonweights keygen"
    ):
        sign.load_private(tmp_path / "missing.pem")
    keys = sign.keygen(tmp_path / "k")
    with pytest.raises(SigningError, match=r"k\.pub: not an unencrypted PEM private key"):
        sign.load_private(Path(keys["public_key"]))
    with pytest.raises(ConfigError, match=r"k: not a PEM public key"):
        sign.load_public(Path(keys["private_key"]))
    (tmp_path / "rsa.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match=r"rsa\.pub: not a PEM public key"):
        sign.load_public(tmp_path / "rsa.pub")


def test_the_key_comes_from_the_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(sign.KEY_ENV, raising=False)
    assert sign.signing_key_path() is None
    monkeypatch.setenv(sign.KEY_ENV, str(tmp_path / "env.pem"))
    assert sign.signing_key_path() == tmp_path / "env.pem"
    assert sign.signing_key_path(tmp_path / "opt.pem") == tmp_path / "opt.pem"
    # The run config has no place for a key: an unknown key in the release section is refused.
    from commonweights.config import ReleaseConfig

    with pytest.raises(ValueError, match="signing_key"):
        ReleaseConfig.model_validate({"signing_key": "/keys/k"})


def test_require_signature_refuses_an_unsigned_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(sign.KEY_ENV, raising=False)
    cfg = make_run(tmp_path / "run")
    strict = cfg.model_copy(update={"release": cfg.release.model_copy(update={"require_signature": True})})
    with pytest.raises(SigningError, match=rf"no signing key was given: set {sign.KEY_ENV}"):
        release.run(strict)
    assert not cfg.paths.release.exists()


def test_an_unsigned_release_can_be_signed_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sign.KEY_ENV, raising=False)
    cfg = make_run(tmp_path / "run")
    release.run(cfg)
    rel = cfg.paths.release
    keys = sign.keygen(tmp_path / "k")
    out = subprocess.run(
        [sys.executable, "-m", "commonweights", "sign", str(rel), "--key", keys["private_key"]],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    v = verify(rel, Path(keys["public_key"]))
    assert v.ok and v.signature_ok, v.problems
    with pytest.raises(SigningError, match="already signed"):
        release.sign_release(rel, Path(keys["private_key"]))
