"""`commonweights keygen | sign | verify | publish`: signing keys and the public side of a release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commonweights.errors import SigningError


class VerificationFailed(SigningError):
    """A release does not match its statement, signature or lineage (exit 1)."""


def register(app: typer.Typer) -> None:
    app.command("keygen")(keygen)
    app.command("sign")(sign_cmd)
    app.command("verify")(verify_cmd)
    app.command("publish")(publish_cmd)


def keygen(
    ctx: typer.Context,
    private_key: Annotated[Path, typer.Argument(help="Where to write the private key (PEM, mode 0600).")],
    public_key: Annotated[
        Path | None, typer.Option("--public", help="Public key path (default: PRIVATE_KEY.pub).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace existing key files.")] = False,
) -> None:
    """Make an Ed25519 signing key pair; publish the .pub file, keep the private key off the cluster's
    shared disks and point COMMONWEIGHTS_SIGNING_KEY at it for `commonweights release`."""
    from commonweights.cli import emit
    from eval.sign import keygen as make

    emit(ctx, make(private_key, public_key, force=force), "key pair written")


def sign_cmd(
    ctx: typer.Context,
    release: Annotated[Path, typer.Argument(help="Release folder (RUN/release).")],
    key: Annotated[
        Path | None, typer.Option("--key", help="Private key (default: $COMMONWEIGHTS_SIGNING_KEY).")
    ] = None,
) -> None:
    """Sign an unsigned release after the fact (its files must still match its statement)."""
    from commonweights.cli import emit
    from eval.release import sign_release

    emit(ctx, sign_release(release, key), "release signed")


def verify_cmd(
    ctx: typer.Context,
    release: Annotated[Path, typer.Argument(help="Release folder to check.")],
    key: Annotated[
        Path | None, typer.Option("--key", help="The publisher's Ed25519 public key (PEM).")
    ] = None,
    allow_unsigned: Annotated[
        bool, typer.Option(help="Accept a release without a signature (hashes and lineage still checked).")
    ] = False,
) -> None:
    """Check a release: signature, every file's hash, no missing or extra file, and the lineage
    (manifest digest recomputed from data/manifest/, policy, config, weights, checkpoint).
    Exit 0 when everything holds, 1 naming each file that does not."""
    from commonweights.cli import Format, emit
    from eval.verify import verify

    v = verify(release, key, allow_unsigned=allow_unsigned)
    record = v.to_record()
    if ctx.obj["format"] == Format.json:
        emit(ctx, record, "")
    elif v.ok:
        state = f"signed by key {v.key_id}" if v.signature_ok else "UNSIGNED (--allow-unsigned)"
        typer.echo(f"OK {release}: {v.files_checked} files match, {state}")
        typer.echo(f"manifest digest {record['manifest_digest']} (recomputed from data/manifest/)")
        typer.echo(
            f"policy {record['policy_hash']}, checkpoint iteration {record['iteration']}, "
            f"code {record['code_commit'] or 'unknown'}"
        )
    else:
        for file, problem in v.problems:
            typer.echo(f"FAILED {file}: {problem}")
    if not v.ok:
        # An error (exit 1) rather than typer.Exit: main() runs click with standalone_mode=False, where
        # an Exit's code is returned, not used as the exit status.
        file, problem = v.problems[0]
        raise VerificationFailed(
            f"{release} does not verify: {len(v.problems)} problem(s), first {file}: {problem}"
        )


def publish_cmd(
    ctx: typer.Context,
    release: Annotated[Path, typer.Argument(help="Release folder to publish.")],
    to: Annotated[str, typer.Option("--to", help="A new directory, or hf://ORG/NAME (Hugging Face Hub).")],
    key: Annotated[
        Path | None, typer.Option("--key", help="Public key to check the signature with before publishing.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Verify and show the plan; publish nothing.")] = False,
) -> None:
    """Verify a release, then copy it to a directory or upload it to the Hugging Face Hub."""
    from commonweights.cli import emit
    from eval.publish import publish

    emit(ctx, publish(release, to, key=key, dry_run=dry_run), "dry run" if dry_run else "published")
