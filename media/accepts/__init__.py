"""Which op takes which file types: the one table ingest refuses uploads by and URL jobs are checked by.

A folder of its own: it reads the ops' declarations (media/strip, media/phash), so it stands above the
modules of media/ rather than among them.

Each entry is the op's own declaration, so the table cannot drift from what the op does: ``metadata`` takes
any file (exiftool decides, in the worker, whether it can read it), ``phash`` the types Pillow decodes
(media/phash.py ``TYPES``) and ``strip`` the types it has a stripper for (media/strip). A job is refused
only when none of its ops takes the file; an op that cannot take a file another op of the job can fails
inside the job with its own code (``phash_unsupported_format``, ``strip_unsupported_format``).
"""

from __future__ import annotations

from collections.abc import Iterable

from media import phash
from media.media_type import MediaType
from media.strip import EXIFTOOL_FORMATS, WALKERS
from schemas.errors import UnsupportedMedia
from schemas.messages import Op

# An op missing here takes any file: a new op needs no entry until it refuses types.
ACCEPTS: dict[Op, frozenset[str]] = {
    Op.PHASH: phash.TYPES,
    Op.STRIP: frozenset(media.mime for media in (*WALKERS, *EXIFTOOL_FORMATS)),
}


def takes(op: Op, media: MediaType) -> bool:
    accepted = ACCEPTS.get(op)
    return accepted is None or media.mime in accepted


def check_accepted(media: MediaType, ops: Iterable[Op]) -> None:
    """Refuse (415 ``unsupported_media``) a file none of ``ops`` takes, saying what each of them takes."""
    ops = list(ops)
    if any(takes(op, media) for op in ops):
        return
    takers = "; ".join(f"{op} takes {describe(op)}" for op in ops)
    raise UnsupportedMedia(f"the file is {media.mime} (.{media.extension}), which no op of the job takes: {takers}")


def describe(op: Op) -> str:
    accepted = ACCEPTS.get(op)
    if accepted is not None:
        return ", ".join(sorted(accepted))
    return "any file exiftool reads" if op is Op.METADATA else "any file"
