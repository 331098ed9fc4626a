"""What a job's zip holds: manifest.json and the copies, streamed."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from typing import IO, Any

from schemas.uniquify import UniquifyParams

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def manifest(
    params: UniquifyParams, seed: int, source_names: Sequence[str], entries: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """manifest.json: the job's parameters and seed, its sources, and ``CopyResult.entry`` per copy."""
    return {
        "seed": seed,
        "params": params.model_dump(mode="json"),
        "sources": [{"index": index, "name": name} for index, name in enumerate(source_names)],
        "copies": sorted(entries, key=lambda entry: (entry["source"], entry["copy"])),
    }


def write_zip(entries: Iterable[tuple[str, bytes]], fileobj: IO[bytes]) -> None:
    """Writes each entry as it comes, so only one copy is in memory; ``fileobj`` need not seek.

    JPEGs do not compress, so entries are stored; fixed timestamps keep the archive reproducible.
    """
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED) as archive:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
