"""Publish a release folder: to a directory (a mirror, a web root, a USB stick) or to the Hugging Face Hub.

A release is checked before it leaves (`eval.verify`: hashes, no missing or extra files, lineage; the
signature too when the publisher's public key is given), and a directory copy is checked again after
the copy, so a published folder is one that verifies. The Hub upload goes through huggingface_hub
(`HfApi.create_repo` + `upload_folder`); its token comes from huggingface_hub's usual places
(`HF_TOKEN`, `hf auth login`), never from the run config.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from commonweights.errors import ConfigError, SigningError, StageError
from eval.release import STATEMENT_FILE
from eval.verify import Verification, verify

HF_SCHEME = "hf://"


def _checked(release: Path, key: Path | None) -> Verification:
    v = verify(release, key, allow_unsigned=True, require_key=False)
    if not v.ok:
        listing = "; ".join(f"{f}: {m}" for f, m in v.problems[:5])
        raise SigningError(f"{release}: does not verify, refusing to publish it: {listing}")
    return v


def parse_target(to: str) -> tuple[str, str]:
    """("hf", "ORG/NAME") or ("dir", path)."""
    if to.startswith(HF_SCHEME):
        repo = to[len(HF_SCHEME) :].strip("/")
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise ConfigError(f"--to {to}: expected hf://ORG/NAME, e.g. hf://my-lab/commonweights-tiny")
        return "hf", repo
    return "dir", to


def publish(release: Path, to: str, *, key: Path | None = None, dry_run: bool = False) -> dict[str, Any]:
    release = Path(release)
    kind, target = parse_target(to)
    v = _checked(release, key)
    statement = json.loads((release / STATEMENT_FILE).read_text(encoding="utf-8"))
    meta = statement.get("release", {})
    plan: dict[str, Any] = {
        "release": str(release),
        "target": to,
        "files": v.files_checked,
        "signed": v.signed,
        "name": meta.get("name"),
        "version": meta.get("version"),
        "dry_run": dry_run,
    }
    if dry_run:
        return plan
    if kind == "dir":
        return {**plan, **_to_directory(release, Path(target), key)}
    return {**plan, **_to_hub(release, target, meta)}


def _to_directory(release: Path, dest: Path, key: Path | None) -> dict[str, Any]:
    if dest.resolve() == release.resolve() or dest.resolve().is_relative_to(release.resolve()):
        raise ConfigError(f"--to {dest}: inside the release folder itself; choose another directory")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"--to {dest}: exists and is not an empty directory; choose a new path")
    tmp = dest.with_name(dest.name + ".publishing")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(release, tmp)
    again = verify(tmp, key, allow_unsigned=True, require_key=False)
    if not again.ok:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StageError(f"{dest}: the copy does not verify ({again.problems[0]}); nothing was published")
    if dest.exists():
        dest.rmdir()
    tmp.rename(dest)
    return {"published": str(dest)}


def _to_hub(release: Path, repo_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(release),
        commit_message=f"Release {meta.get('name')} {meta.get('version')} (commonweights)",
    )
    return {"published": f"https://huggingface.co/{repo_id}", "commit": getattr(info, "oid", None)}
