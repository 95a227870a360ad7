"""The auditors' data report page, loaded in real headless Chromium with the network cut off: it shows
the manifest's counts, every reason, licence and top domain, and needs no external resource."""

from __future__ import annotations

import json
import re
import struct
import zlib


def _non_white_share(png: bytes) -> float:
    """Share of non-white pixels of an 8-bit RGB/RGBA PNG (Chromium's screenshots), decoded by hand."""
    pos, idat, width, height, kind = 8, b"", 0, 0, 0
    while pos < len(png):
        length, tag = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        if tag == b"IHDR":
            width, height, _, kind = struct.unpack(">IIBB", body[:10])
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if kind == 6 else 3
    raw = zlib.decompress(idat)
    stride, prev, dark = width * bpp, bytearray(width * bpp), 0
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa_, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa_ <= pb and pa_ <= pc else b if pb <= pc else c)) & 255
        dark += sum(1 for x in range(0, stride, bpp) if min(line[x : x + 3]) < 200)
        prev = line
    return dark / (width * height)


def test_data_report_renders_in_chromium(audited_run, chromium, tmp_path):
    _, run = audited_run
    folder = run / "curate" / "manifest"
    html = (folder / "data_report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "external resource in the page"
    meta = json.loads((folder / "manifest.json").read_text())
    png = tmp_path / "report.png"
    dom = chromium(folder / "data_report.html", png, width=1280, height=1600)
    assert f'id="digest">{meta["digest"]["root"]}' in dom
    for decision, n in meta["counts"].items():
        assert f'id="count-{decision}">{n}<' in dom
    for reason in meta["reasons"]:
        if not reason.startswith("duplicate_of:"):  # per-document codes: shown by family
            assert f">{reason}<" in dom or f"{reason}: " in dom, reason
    for licence in meta["licences"]:
        assert f"{licence}: {meta['licences'][licence]}" in dom
    top = max(meta["domains"], key=lambda d: meta["domains"][d]["kept"])
    assert f"<td>{top}</td>" in dom
    assert dom.count("<svg") == 5
    assert 0.03 < _non_white_share(png.read_bytes()) < 0.6  # charts drawn, page not blank or broken
