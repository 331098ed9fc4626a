"""The zip of a uniquification job, written copy by copy to a temporary file and uploaded from it,
so a job's copies are never all in memory at once."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

from adapters.objects import ObjectStore, archive_key
from media.uniquify import manifest, write_zip
from schemas.tables import Ledger

MANIFEST_NAME = "manifest.json"


def job_manifest(ledger: Ledger) -> dict[str, Any]:
    job = ledger.job
    assert job is not None
    names = [source.name for source in job.sources]
    document = manifest(job.params, job.seed, names, [made.entry for made in ledger.made.values()])
    document["failed"] = [failed.model_dump() for failed in sorted(ledger.failed.values(), key=lambda f: f.source)]
    return document


def build_archive(store: ObjectStore, job_id: str, ledger: Ledger) -> tuple[str, int, dict[str, Any]]:
    """Uploads the zip (copies in plan order, then manifest.json); returns its key, size and manifest."""
    document = job_manifest(ledger)
    keys = {made.entry["path"]: made.object_key for made in ledger.made.values()}

    def entries() -> Iterator[tuple[str, bytes]]:
        for entry in document["copies"]:
            yield entry["path"], store.get_bytes(keys[entry["path"]])
        yield MANIFEST_NAME, json.dumps(document, indent=2).encode()

    key = archive_key(job_id)
    with tempfile.NamedTemporaryFile(suffix=".zip") as spool:
        write_zip(entries(), spool)
        spool.flush()
        size = spool.tell()
        store.put_file(key, spool.name, "application/zip")
    return key, size, document
