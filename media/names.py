"""The one guard for client-supplied file names (uploads, URL paths, Content-Disposition, archive entries).

A name is for display and for archive entries only; it never becomes a path on disk or a command-line
argument. What survives: the last path component, without control or bidi-override characters,
without leading dots (no hidden files, no ``..``), at most 200 characters, never empty.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_CHARS = 200
FALLBACK_NAME = "file"

_SEPARATORS = re.compile(r"[\\/]+")


def safe_name(raw: str | None, fallback: str = FALLBACK_NAME) -> str:
    if not raw:
        return fallback
    last = _SEPARATORS.split(unicodedata.normalize("NFC", raw))[-1]
    kept = "".join(ch for ch in last if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    kept = kept.strip().lstrip(".").strip()
    if not kept:
        return fallback
    if len(kept) > MAX_NAME_CHARS:
        stem, dot, ext = kept.rpartition(".")
        ext = ext[:16] if dot and stem else ""
        kept = kept[: MAX_NAME_CHARS - len(ext) - 1] + "." + ext if ext else kept[:MAX_NAME_CHARS]
    return kept
