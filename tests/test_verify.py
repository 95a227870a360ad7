"""`commonweights verify` as the public runs it: a signed release passes; tampering fails naming the file."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_release import make_run

from commonweights.errors import StageError
from data_governance import manifest as manifest_mod
from eval import release, sign
from eval.publish import publish
from eval.verify import verify


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commonweights", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A release signed with a fresh key: (release folder, public key)."""
    root = tmp_path_factory.mktemp("signed")
    keys = sign.keygen(root / "keys" / "publisher")
    cfg = make_run(root / "run")
    result = release.run(cfg, key_path=Path(keys["private_key"]))
    assert result["signed"] and result["key_id"] == keys["key_id"]
    return cfg.paths.release, Path(keys["public_key"])


@pytest.fixture
def copy(signed: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    rel, pub = signed
    shutil.copytree(rel, tmp_path / "release")
    return tmp_path / "release", pub


def flip_byte(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_fresh_signed_release_verifies(signed: tuple[Path, Path]) -> None:
    rel, pub = signed
    assert {"statement.json", "statement.sig", "SHA256SUMS"} <= {p.name for p in rel.iterdir()}
    v = verify(rel, pub)
    assert v.ok, v.problems
    assert v.signed and v.signature_ok and v.key_id == sign.key_id(sign.load_public(pub))
    statement = json.loads((rel / "statement.json").read_text())
    on_disk = {p.relative_to(rel).as_posix() for p in rel.rglob("*") if p.is_file()}
    assert set(statement["files"]) == on_disk - {"statement.json", "statement.sig", "SHA256SUMS"}
    assert v.files_checked == len(statement["files"])

    out = cli("verify", str(rel), "--key", str(pub))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"OK {rel}" in out.stdout and "signed by key" in out.stdout
    assert statement["lineage"]["manifest_digest"] in out.stdout

    js = cli("--format", "json", "verify", str(rel), "--key", str(pub))
    record = json.loads(js.stdout)
    assert js.returncode == 0 and record["ok"] and record["signature_ok"] and record["problems"] == []
    # sha256sum alone also agrees (SHA256SUMS lists every file but itself and the signature).
    assert subprocess.run(["sha256sum", "--strict", "--quiet", "-c", "SHA256SUMS"], cwd=rel).returncode == 0


def test_openssl_checks_the_signature_without_our_code(signed: tuple[Path, Path]) -> None:
    rel, pub = signed
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    args = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin"]
    ok = subprocess.run(
        [*args, "-in", "statement.json", "-sigfile", "statement.sig"], cwd=rel, capture_output=True
    )
    assert ok.returncode == 0 and b"Signature Verified Successfully" in ok.stdout
    bad = subprocess.run(
        [*args, "-in", "SHA256SUMS", "-sigfile", "statement.sig"], cwd=rel, capture_output=True
    )
    assert bad.returncode != 0


@pytest.mark.parametrize(
    "target",
    [
        "model/model.safetensors",
        "README.md",
        "data/summary.json",
        "data/manifest/manifest.json",
        "data/manifest/part-00000-of-00001.parquet",
        "transparency/report.html",
        "config.json",
    ],
)
def test_one_flipped_byte_fails_naming_the_file(copy: tuple[Path, Path], target: str) -> None:
    rel, pub = copy
    flip_byte(rel / target, offset=len((rel / target).read_bytes()) // 2)
    out = cli("verify", str(rel), "--key", str(pub))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"FAILED {target}: sha256 does not match statement.json" in out.stdout
    assert target in out.stderr  # the one-line error names it too


def test_a_changed_statement_breaks_the_signature(copy: tuple[Path, Path]) -> None:
    rel, pub = copy
    flip_byte(rel / "statement.json", offset=200)
    out = cli("verify", str(rel), "--key", str(pub))
    assert out.returncode == 1
    assert "FAILED statement.json: signature does not match" in out.stdout


def test_added_and_removed_files_are_named(copy: tuple[Path, Path]) -> None:
    rel, pub = copy
    (rel / "model" / "extra.safetensors").write_bytes(b"not from the run")
    (rel / "eval" / "results.json").unlink()
    out = cli("verify", str(rel), "--key", str(pub))
    assert out.returncode == 1
    assert "FAILED model/extra.safetensors: extra: in the release but not listed" in out.stdout
    assert "FAILED eval/results.json: missing: listed in statement.json" in out.stdout


def test_a_removed_signature_or_another_key_fails(copy: tuple[Path, Path], tmp_path: Path) -> None:
    rel, pub = copy
    other = sign.keygen(tmp_path / "other")
    out = cli("verify", str(rel), "--key", other["public_key"])
    assert out.returncode == 1 and "FAILED statement.json: signature does not match" in out.stdout
    no_key = cli("verify", str(rel))
    assert no_key.returncode == 2 and "--key" in no_key.stderr
    (rel / "statement.sig").unlink()
    gone = cli("verify", str(rel), "--key", str(pub), "--allow-unsigned")
    assert gone.returncode == 1 and "FAILED statement.sig: missing" in gone.stdout


def test_unsigned_release_fails_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sign.KEY_ENV, raising=False)
    cfg = make_run(tmp_path / "run")
    assert release.run(cfg)["signed"] is False
    rel = cfg.paths.release
    assert not (rel / "statement.sig").exists()
    assert json.loads((rel / "statement.json").read_text())["signer"] is None
    out = cli("verify", str(rel))
    assert out.returncode == 1 and "FAILED statement.sig: the release is not signed" in out.stdout
    ok = cli("verify", str(rel), "--allow-unsigned")
    assert ok.returncode == 0 and "UNSIGNED" in ok.stdout


def _rehash(rel: Path) -> None:
    """What a forger without the key can do: make every hash agree with changed content."""
    m = rel / "data" / "manifest" / "manifest.json"
    doc = json.loads(m.read_text())
    part = rel / "data" / "manifest" / doc["parts"][0]["path"]
    doc["parts"][0]["sha256"] = hashlib.sha256(part.read_bytes()).hexdigest()
    m.write_text(json.dumps(doc, indent=2) + "\n")
    st = json.loads((rel / "statement.json").read_text())
    st["signer"] = None
    for name in st["files"]:
        data = (rel / name).read_bytes()
        st["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (rel / "statement.json").write_text(json.dumps(st, indent=2) + "\n")
    (rel / "statement.sig").unlink(missing_ok=True)
    (rel / "SHA256SUMS").write_text(release.sha256sums(rel))


def test_lineage_catches_rows_changed_behind_consistent_hashes(copy: tuple[Path, Path]) -> None:
    rel, _ = copy
    part = rel / "data" / "manifest" / "part-00000-of-00001.parquet"
    rows = pq.read_table(part).to_pylist()
    opted_out = next(r for r in rows if "robots:GPTBot" in r["reasons"])
    opted_out["decision"], opted_out["reasons"] = "kept", []  # quietly train on an opted-out page
    pq.write_table(pa.Table.from_pylist(rows, schema=manifest_mod.SCHEMA), part)
    _rehash(rel)
    v = verify(rel, None, allow_unsigned=True)
    assert [f for f, _ in v.problems] == ["data/manifest"]
    assert "rows hash to" in v.problems[0][1] and "not to the manifest digest" in v.problems[0][1]


def test_lineage_catches_a_config_with_another_policy(copy: tuple[Path, Path]) -> None:
    rel, _ = copy
    config = json.loads((rel / "config.json").read_text())
    config["governance"]["robots_5xx"] = "allow"
    (rel / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    _rehash(rel)
    problems = verify(rel, None, allow_unsigned=True).problems
    assert ("config.json", "does not hash to the config digest in statement.json") in problems
    assert ("config.json", "its governance section is not the policy the data was curated under") in problems


def test_publish_to_a_directory_copies_a_release_that_verifies(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    rel, pub = signed
    dest = tmp_path / "mirror" / "commonweights-tiny-0.1.0"
    out = cli("publish", str(rel), "--to", str(dest), "--key", str(pub))
    assert out.returncode == 0, out.stderr
    assert verify(dest, pub).ok
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == sorted(
        p.relative_to(rel) for p in rel.rglob("*")
    )
    again = cli("publish", str(rel), "--to", str(dest))
    assert again.returncode == 2 and "not an empty directory" in again.stderr
    plan = publish(rel, "hf://my-lab/commonweights-tiny", key=pub, dry_run=True)
    assert plan["dry_run"] and plan["signed"] and plan["version"] == "0.1.0"
    bad = cli("publish", str(rel), "--to", "hf://no-slash")
    assert bad.returncode == 2 and "hf://ORG/NAME" in bad.stderr


def test_publish_refuses_a_tampered_release(copy: tuple[Path, Path], tmp_path: Path) -> None:
    rel, pub = copy
    flip_byte(rel / "README.md")
    out = cli("publish", str(rel), "--to", str(tmp_path / "out"))
    assert out.returncode == 1 and "README.md" in out.stderr and not (tmp_path / "out").exists()


def test_no_secret_from_the_environment_is_released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wandb-secret-0123456789abcdef"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
    keys = sign.keygen(tmp_path / "keys" / "k")
    monkeypatch.setenv(sign.KEY_ENV, keys["private_key"])
    cfg = make_run(tmp_path / "run")
    assert release.run(cfg)["signed"]
    pem = Path(keys["private_key"]).read_bytes()
    for path in cfg.paths.release.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and b"hf_xxxxxxxx" not in data and pem not in data, path
            assert keys["private_key"].encode() not in data, path  # not even the key's path

    # Had the secret reached a released file, the release stage would have refused, naming the file.
    results = json.loads((cfg.paths.eval / "results.json").read_text())
    (cfg.paths.eval / "results.json").write_text(json.dumps({**results, "model": f"hf/{secret}"}))
    with pytest.raises(
        StageError, match=r"release/eval/results\.json contains the value of WANDB_API_KEY"
    ) as e:
        release.run(cfg)
    assert secret not in str(e.value)  # the message names the variable, never its value
