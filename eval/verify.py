"""`commonweights verify RELEASE_DIR --key KEY.pub`: check a release the way a member of the public would.

Pure reading, no network, no run folder: only the release and the publisher's public key.
1. signature: `statement.sig` is a valid Ed25519 signature of `statement.json` by the given key;
2. files: every file the statement lists is present with its sha256 and size, and nothing else is
   there (besides the statement, its signature and SHA256SUMS); SHA256SUMS agrees with the files;
3. lineage: the manifest digest in the statement equals the Merkle root recomputed from the rows in
   `data/manifest/*.parquet` and the one in `data/manifest/manifest.json`; the policy hash equals the
   sha256 of the policy recorded there and of every row's `policy_hash`; `config.json` hashes to the
   config digest and holds that policy; the weights hash as the lineage says; `model/export.json`
   names the same checkpoint; the transparency report carries the same lineage.
Every problem is collected (not just the first), each naming the file it is about.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commonweights.config import canonical_json
from commonweights.errors import ConfigError
from data_governance.ids import sha256_file
from eval import sign
from eval.release import (
    CONFIG_FILE,
    MANIFEST_DIR,
    SIGNATURE_FILE,
    STATEMENT_FILE,
    STATEMENT_SCHEMA,
    SUMS_FILE,
    config_digest,
)

CONTROL_FILES = (STATEMENT_FILE, SIGNATURE_FILE, SUMS_FILE)


@dataclass
class Verification:
    release: Path
    signed: bool = False
    signature_ok: bool = False
    key_id: str | None = None
    files_checked: int = 0
    lineage: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, file: str, message: str) -> None:
        self.problems.append((file, message))

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_record(self) -> dict[str, Any]:
        return {
            "release": str(self.release),
            "ok": self.ok,
            "signed": self.signed,
            "signature_ok": self.signature_ok,
            "key_id": self.key_id,
            "files_checked": self.files_checked,
            "manifest_digest": self.lineage.get("manifest_digest"),
            "policy_hash": self.lineage.get("policy_hash"),
            "iteration": self.lineage.get("iteration"),
            "code_commit": self.lineage.get("code_commit"),
            "problems": [{"file": f, "problem": m} for f, m in self.problems],
        }


def _on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _load_json(root: Path, rel: str, v: Verification) -> Any:
    path = root / rel
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        v.fail(rel, f"not valid JSON ({e})")
        return None


def check_signature(
    root: Path,
    statement_bytes: bytes,
    statement: dict[str, Any],
    key: Path | None,
    v: Verification,
    require_key: bool = True,
) -> None:
    signer = statement.get("signer")
    sig_path = root / SIGNATURE_FILE
    if not sig_path.is_file():
        if signer:
            v.fail(SIGNATURE_FILE, "missing: the statement says the release is signed")
        return
    v.signed = True
    if key is None and not require_key:
        return
    if key is None:
        raise ConfigError(
            f"{sig_path}: the release is signed; pass the publisher's public key with --key KEY.pub"
        )
    public = sign.load_public(key)
    v.key_id = sign.key_id(public)
    if not sign.is_valid(public, statement_bytes, sig_path.read_bytes()):
        v.fail(
            STATEMENT_FILE,
            f"signature does not match (statement.json or statement.sig changed, or {key} is "
            "not the key that signed it)",
        )
        return
    if not signer or signer.get("key_id") != v.key_id:
        v.fail(STATEMENT_FILE, f"signed by {v.key_id} but names signer {signer!r}")
        return
    v.signature_ok = True


def check_files(root: Path, statement: dict[str, Any], v: Verification) -> None:
    files = statement.get("files")
    if not isinstance(files, dict) or not files:
        v.fail(STATEMENT_FILE, "lists no files")
        return
    disk = _on_disk(root)
    for rel, want in sorted(files.items()):
        path = root / rel
        if rel not in disk:
            v.fail(rel, "missing: listed in statement.json but not in the release")
            continue
        if path.is_symlink() or not path.is_file():
            v.fail(rel, "not a regular file")
            continue
        if path.stat().st_size != want.get("size") or sha256_file(path) != want.get("sha256"):
            v.fail(rel, "sha256 does not match statement.json: the file was changed")
        v.files_checked += 1
    for rel in sorted(disk - set(files) - set(CONTROL_FILES)):
        v.fail(rel, "extra: in the release but not listed in statement.json")


def check_sums(root: Path, v: Verification) -> None:
    path = root / SUMS_FILE
    if not path.is_file():
        v.fail(SUMS_FILE, "missing")
        return
    listed: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            v.fail(SUMS_FILE, f"line {n} is not `SHA256  PATH`")
            continue
        listed[rel] = digest
    expected = _on_disk(root) - {SUMS_FILE, SIGNATURE_FILE}
    for rel in sorted(expected - set(listed)):
        v.fail(SUMS_FILE, f"does not list {rel}")
    for rel, digest in sorted(listed.items()):
        if rel not in expected:
            v.fail(SUMS_FILE, f"lists {rel}, which is not in the release")
        elif sha256_file(root / rel) != digest:
            # The file itself is named by check_files when the statement lists it; the statement's own
            # hash is only in SHA256SUMS.
            v.fail(rel, "sha256 does not match SHA256SUMS")


def _manifest_rows(folder: Path, manifest: dict[str, Any], v: Verification) -> list[dict[str, Any]] | None:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    listed = {p["path"]: p for p in manifest.get("parts", [])}
    present = sorted(p.name for p in folder.glob("part-*.parquet"))
    if sorted(listed) != present:
        v.fail(
            f"{MANIFEST_DIR}/manifest.json", f"lists parts {sorted(listed)} but the folder holds {present}"
        )
        return None
    for name in present:
        rel = f"{MANIFEST_DIR}/{name}"
        if sha256_file(folder / name) != listed[name].get("sha256"):
            v.fail(rel, "sha256 differs from the one manifest.json records")
            return None
        try:
            rows.extend(pq.read_table(folder / name).to_pylist())
        except Exception as e:  # pyarrow raises several types for a damaged file
            v.fail(rel, f"not a readable Parquet file ({e})")
            return None
    return rows


def check_lineage(root: Path, statement: dict[str, Any], v: Verification) -> None:
    from data_governance.manifest import digest as manifest_digest

    lin = statement.get("lineage") or {}
    v.lineage = lin
    mrel = f"{MANIFEST_DIR}/manifest.json"
    manifest = _load_json(root, mrel, v)
    if not isinstance(manifest, dict):
        v.fail(mrel, "missing or not a JSON object: the data digest cannot be checked")
        return
    if manifest.get("digest", {}).get("root") != lin.get("manifest_digest"):
        v.fail(mrel, "digest differs from the manifest digest in statement.json")
    rows = _manifest_rows(root / MANIFEST_DIR, manifest, v)
    if rows is not None:
        recomputed = manifest_digest(rows)
        if recomputed != lin.get("manifest_digest"):
            v.fail(MANIFEST_DIR, f"rows hash to {recomputed}, not to the manifest digest in statement.json")
        if len(rows) != lin.get("manifest_rows", len(rows)):
            v.fail(MANIFEST_DIR, f"holds {len(rows)} rows; statement.json says {lin.get('manifest_rows')}")
        bad = sorted({r["policy_hash"] for r in rows} - {lin.get("policy_hash")})
        if bad:
            v.fail(MANIFEST_DIR, f"rows carry policy hash(es) {bad}, not the release's policy hash")

    policy = manifest.get("policy")
    if hashlib.sha256(canonical_json(policy).encode()).hexdigest() != lin.get("policy_hash"):
        v.fail(mrel, "the recorded policy does not hash to the policy hash in statement.json")
    if manifest.get("policy_hash") != lin.get("policy_hash"):
        v.fail(mrel, "policy_hash differs from statement.json's")

    config = _load_json(root, CONFIG_FILE, v)
    if not isinstance(config, dict):
        v.fail(CONFIG_FILE, "missing or not a JSON object: the config digest cannot be checked")
    else:
        if config_digest(config) != lin.get("config_digest"):
            v.fail(CONFIG_FILE, "does not hash to the config digest in statement.json")
        if isinstance(policy, dict):
            governance = {k: val for k, val in policy.items() if k != "policy_version"}
            if config.get("governance") != governance:
                v.fail(CONFIG_FILE, "its governance section is not the policy the data was curated under")

    for name, digest in (lin.get("weights_sha256") or {}).items():
        path = root / "model" / name
        if not path.is_file() or sha256_file(path) != digest:
            v.fail(f"model/{name}", "does not hash to the weights digest in the lineage")
    export = _load_json(root, "model/export.json", v)
    if isinstance(export, dict) and (
        export.get("iteration") != lin.get("iteration") or export.get("checkpoint") != lin.get("checkpoint")
    ):
        v.fail("model/export.json", "names another checkpoint than the lineage")
    report = _load_json(root, "transparency/report.json", v)
    if isinstance(report, dict) and report.get("lineage") != lin:
        v.fail("transparency/report.json", "its lineage differs from statement.json's")


def check_data_order(root: Path, statement: dict[str, Any], v: Verification) -> None:
    """The data-order log chains to the signed head and the released checkpoints sit on it."""
    from training import data_order

    lin = statement.get("lineage") or {}
    signed = lin.get("data_order")
    if signed is None:
        return  # a release built without a log (the report says it cannot be replayed)
    chain, problems = data_order.check_release(root, signed)
    for step, file, problem in problems:
        v.fail(file, problem if step is None else f"step {step}: {problem}")
    if chain.ok and lin.get("iteration") not in chain.checkpoints:
        it = lin.get("iteration")
        v.fail(data_order.RELEASE_LOG, f"the exported iteration {it} is not a logged checkpoint")


def verify(
    release: Path, key: Path | None = None, *, allow_unsigned: bool = False, require_key: bool = True
) -> Verification:
    """Check `release` against the publisher's public key; see the module docstring for what is checked.

    A signed release needs `key` unless `require_key` is False (then everything but the signature is
    checked: what `publish` does when it is not given the public key)."""
    root = Path(release)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder; pass the release folder (the one holding statement.json)")
    v = Verification(release=root)
    statement_path = root / STATEMENT_FILE
    if not statement_path.is_file():
        v.fail(STATEMENT_FILE, "missing: nothing says which files belong to the release")
        return v
    statement_bytes = statement_path.read_bytes()
    try:
        statement = json.loads(statement_bytes)
    except (ValueError, UnicodeDecodeError) as e:
        statement = None
        v.fail(STATEMENT_FILE, f"not valid JSON ({e})")
    if not isinstance(statement, dict) or statement.get("schema") != STATEMENT_SCHEMA:
        if statement is not None:
            v.fail(STATEMENT_FILE, f"not a {STATEMENT_SCHEMA} document")
        check_signature(root, statement_bytes, {}, key, v, require_key)
        return v
    check_signature(root, statement_bytes, statement, key, v, require_key)
    if not v.signed and not allow_unsigned:
        v.fail(SIGNATURE_FILE, "the release is not signed (pass --allow-unsigned to check its hashes anyway)")
    check_files(root, statement, v)
    check_sums(root, v)
    check_lineage(root, statement, v)
    check_data_order(root, statement, v)
    return v
