"""PII redaction: emails, phone numbers and public IPv4 addresses are replaced by placeholders.

Counts per kind go to the manifest so an auditor can see how much was redacted where.
"""

from __future__ import annotations

import ipaddress
import re

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# International or national numbers with separators: +41 44 123 45 67, (555) 123-4567, 020 7946 0958.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w-])"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./-]\d{2}[./-]\d{4}")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")

PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP>"}


def _public_ip(text: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return ip.is_global


def redact(text: str) -> tuple[str, dict[str, int]]:
    counts = {"email": 0, "phone": 0, "ip": 0}

    def sub_email(m: re.Match[str]) -> str:
        counts["email"] += 1
        return PLACEHOLDERS["email"]

    def sub_ip(m: re.Match[str]) -> str:
        if not _public_ip(m.group(0)):
            return m.group(0)
        counts["ip"] += 1
        return PLACEHOLDERS["ip"]

    def sub_phone(m: re.Match[str]) -> str:
        digits = sum(c.isdigit() for c in m.group(0))
        # E.164 numbers have at most 15 digits; fewer than 7 is a count, and dates look like numbers.
        if digits < 7 or digits > 15 or _DATE.fullmatch(m.group(0)):
            return m.group(0)
        counts["phone"] += 1
        return PLACEHOLDERS["phone"]

    text = _EMAIL.sub(sub_email, text)
    text = _IPV4.sub(sub_ip, text)  # before phones: a dotted IP also looks like a phone number
    text = _PHONE.sub(sub_phone, text)
    return text, counts
