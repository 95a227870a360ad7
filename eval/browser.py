"""Render a static HTML page in Debian's headless Chromium: a screenshot and the DOM after scripts ran.

The transparency page (and the data report page) must show their story in a real browser, with no
network: `render` loads the file with every host name unresolvable, so a page that needs an external
resource looks broken in the screenshot instead of silently fetching it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from commonweights.errors import CommonweightsError

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SCRIPT = "eval/install_chromium.sh"

# Flags that keep a headless run hermetic: no sandbox (containers run as root), no GPU, no first-run
# UI, no background fetches (component updates, sync, QUIC probes), and no DNS at all.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


class BrowserError(CommonweightsError):
    """Chromium is missing or could not render a page."""


def chromium_path() -> Path:
    """The Chromium binary (`COMMONWEIGHTS_CHROMIUM` overrides /usr/bin/chromium); raises when absent."""
    path = Path(os.environ.get("COMMONWEIGHTS_CHROMIUM", str(CHROMIUM)))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BrowserError(
            f"Chromium not found at {path}: install Debian's chromium with `sudo bash {INSTALL_SCRIPT}` "
            "(or set COMMONWEIGHTS_CHROMIUM to a Chromium binary)"
        )
    return path


def render(html: Path, png: Path, *, width: int = 1280, height: int = 4000, timeout_s: float = 120.0) -> str:
    """Load `html` in headless Chromium, write a `width`×`height` screenshot to `png`, return the DOM.

    The returned string is the serialised DOM after the page's scripts ran (`--dump-dom`), so tests can
    check what a reader actually sees. A fresh profile directory is used for every call and removed after.
    """
    html = Path(html).resolve()
    png = Path(png).resolve()
    if not html.is_file():
        raise BrowserError(f"cannot render {html}: no such file")
    binary = chromium_path()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="commonweights-chromium-"))
    try:
        cmd = [
            str(binary),
            *_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            "--dump-dom",
            html.as_uri(),
        ]
        try:
            out = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                env={**os.environ, "HOME": str(profile)},
            )
        except subprocess.TimeoutExpired as exc:
            raise BrowserError(f"Chromium did not finish rendering {html} within {timeout_s:.0f} s") from exc
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if out.returncode != 0 or not out.stdout.strip():
        tail = "\n".join(out.stderr.strip().splitlines()[-5:])
        raise BrowserError(f"Chromium failed to render {html} (exit {out.returncode}):\n{tail}")
    if not png.is_file() or png.stat().st_size == 0:
        raise BrowserError(f"Chromium rendered {html} but wrote no screenshot to {png}")
    return out.stdout
