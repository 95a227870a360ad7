"""`commonweights keygen | sign | verify | publish`: signing keys and the public side of a release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    replay: Annotated[
        bool,
        typer.Option(help="Also re-run a window of training and check it against the signed data-order log."),
    ] = False,
    from_step: Annotated[
        int | None, typer.Option(help="Replay from this released checkpoint (default: the oldest released).")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Steps to replay (default: up to the next logged checkpoint).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="The run's tokens/ folder, for releases that do not ship the token files."),
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="Empty folder to replay in, kept afterwards (default: a temp folder).")
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(help="Largest relative loss/grad-norm/weight difference accepted on other hardware."),
    ] = 1e-4,
    one_process: Annotated[
        bool,
        typer.Option(help="Replay a TP/PP/DP run in one process (results within tolerance, not bitwise)."),
    ] = False,
) -> None:
    """Check a release: signature, every file's hash, no missing or extra file, and the lineage
    (manifest digest recomputed from data/manifest/, policy, config, weights, checkpoint, data-order
    log). With --replay, re-train a window from a released checkpoint and compare each step's data,
    loss and the final weights with the log (docs/replay.md). Exit 0 when everything holds, 1 naming
    each file or the first step that does not."""
    from commonweights.cli import Format, emit
    from eval.verify import verify

    v = verify(release, key, allow_unsigned=allow_unsigned)
    record = v.to_record()
    if replay and v.ok:
        from training.replay import replay as run_replay

        r = run_replay(release, from_step, steps, data, work, tolerance, one_process)
        record["replay"] = r.to_record()
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
    replayed = record.get("replay")
    if replayed is not None:
        _report_replay(ctx, r)
    if replayed is not None and not replayed["ok"]:
        first = replayed["problems"][0]["problem"]
        raise VerificationFailed(
            f"{release}: the replay does not match the log "
            f"(first bad step {replayed['first_bad_step']}): {first}"
        )


def _report_replay(ctx: typer.Context, r: Any) -> None:
    from commonweights.cli import Format

    if ctx.obj["format"] == Format.json:
        return
    if r.ok:
        how = "bit for bit" if r.bitwise else f"within {r.tolerance:g}"
        typer.echo(
            f"REPLAY OK steps {r.from_step + 1}..{r.from_step + r.steps}: data order exact, "
            f"losses match {how} "
            f"(largest relative difference {r.max_loss_rel_diff:.3g}), weights hash at step "
            f"{r.from_step + r.steps} {'equal' if r.weights.get('equal') else 'differs within tolerance'}"
        )
        typer.echo(f"data-order chain head {r.chain_head} (signed)")
    else:
        for step, problem in r.problems:
            typer.echo(f"REPLAY FAILED{'' if step is None else f' at step {step}'}: {problem}")


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
