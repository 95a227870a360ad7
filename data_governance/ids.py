"""Stable document ids: the same capture gets the same id in every later re-processing (Dolma's lesson),
so takedowns and contamination lists keep applying to new versions of the data."""

import hashlib
from pathlib import Path


def doc_id(target_uri: str, warc_date: str, payload_digest: str) -> str:
    """128-bit hex id from the capture's identity: target URI, WARC date and payload digest."""
    key = f"{target_uri}\n{warc_date}\n{payload_digest}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def malformed_id(source_file: str, offset: int) -> str:
    """Id of a record too broken to name itself: its place in its source file."""
    return hashlib.sha256(f"malformed\n{source_file}\n{offset}".encode()).hexdigest()[:32]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks (weights and manifests can be large)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
