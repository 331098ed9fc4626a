"""The plan of a job: every copy it fans out into, with the seed that makes it and its path in the zip."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from media.names import safe_name
from schemas.uniquify import CopyTask, Folders, Names, UniquifyParams

# Whole-byte limit of a path component on common filesystems, with room for "-NN_NNN.jpg".
_MAX_STEM_BYTES = 200
_FALLBACK_STEM = "image"
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?")


def plan_copies(params: UniquifyParams, source_names: Sequence[str], seed: int) -> list[CopyTask]:
    """Every copy of the job, source by source, with its seed and its path in the archive.

    A copy's seed derives from the job seed and the copy's position alone, so a job is reproducible.
    """
    stems = archive_stems(source_names)
    tasks = []
    for source in range(len(source_names)):
        for copy in range(1, params.copies + 1):
            name = _file_name(params, source, copy, stems[source], seed)
            folder = _folder_name(params, source, copy, stems[source], seed)
            tasks.append(
                CopyTask(
                    source_index=source,
                    copy_index=copy,
                    seed=int.from_bytes(_digest(seed, source, copy, "pixels")[:8], "big") >> 1,
                    path=f"{folder}/{name}" if folder else name,
                )
            )
    return tasks


def archive_stems(source_names: Sequence[str]) -> list[str]:
    """One stem per source, safe as a zip entry on any OS, unique ignoring case."""
    taken: set[str] = set()
    stems = []
    for raw in source_names:
        stem = candidate = _archive_stem(raw)
        number = 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem}-{number}"
        taken.add(candidate.casefold())
        stems.append(candidate)
    return stems


def _archive_stem(raw: str) -> str:
    name = safe_name(raw, _FALLBACK_STEM)
    stem = name.rpartition(".")[0] or name
    # safe_name keeps line separators and other unusual spaces; one plain space says the same.
    stem = " ".join(_WINDOWS_FORBIDDEN.sub("_", stem).split())
    stem = stem.encode()[:_MAX_STEM_BYTES].decode(errors="ignore").rstrip(". ")
    if not stem:
        return _FALLBACK_STEM
    return f"_{stem}" if _WINDOWS_RESERVED.fullmatch(stem) else stem


def _file_name(params: UniquifyParams, source: int, copy: int, stem: str, seed: int) -> str:
    if params.names is Names.HASHED:
        return f"{_digest(seed, source, copy, 'name').hex()[:32]}.jpg"
    if params.names is Names.ORIGINAL:
        return f"{stem}_{copy}.jpg"
    number = {
        Folders.ONE: source * params.copies + copy,
        Folders.PER_SOURCE: copy,
        Folders.PER_COPY: source + 1,
    }[params.folders]
    return f"{number}.jpg"


def _folder_name(params: UniquifyParams, source: int, copy: int, stem: str, seed: int) -> str | None:
    if params.folders is Folders.ONE:
        return None
    if params.folders is Folders.PER_COPY:
        return str(copy)
    if params.names is Names.HASHED:
        return _digest(seed, source, "folder").hex()[:32]
    return stem if params.names is Names.ORIGINAL else str(source + 1)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("/".join(map(str, parts)).encode()).digest()
