"""What a uniquification job asks for (imgfactory's parameters) and the copies it fans out into.

Parsed and bounded at ingest (media/uniquify/params.py says what each parameter means); carried typed on
``medialane.uniquify.jobs`` and ``medialane.uniquify.tasks``.
"""

from __future__ import annotations

from enum import IntEnum

from pydantic import BaseModel, ConfigDict


class Names(IntEnum):
    HASHED = 0
    SEQUENTIAL = 1
    ORIGINAL = 2


class Folders(IntEnum):
    ONE = 0
    PER_SOURCE = 1
    PER_COPY = 2


class Flip(IntEnum):
    NONE = 0
    HORIZONTAL = 1
    VERTICAL = 2
    BOTH = 3


class ExifMode(IntEnum):
    REMOVED = 0
    RANDOM = 1
    SIMILAR = 2
    DONOR = 3


class CropSide(IntEnum):
    ONE = 0
    TWO = 1
    ALL = 2
    RANDOM = 3


class _Model(BaseModel):
    # Carried in messages: a reader ignores fields a newer writer added (schemas/messages.py).
    model_config = ConfigDict(extra="ignore", frozen=True)


class Range(_Model):
    enable: bool
    min: float
    max: float


class Crop(Range):
    side: CropSide


class UniquifyParams(_Model):
    copies: int = 10
    names: Names = Names.HASHED
    folders: Folders = Folders.ONE
    rotate: Range = Range(enable=True, min=0, max=2)
    crop: Crop = Crop(enable=False, side=CropSide.TWO, min=1, max=5)
    saturation: Range = Range(enable=True, min=90, max=110)
    brightness: Range = Range(enable=True, min=90, max=110)
    contrast: Range = Range(enable=True, min=1, max=15)
    flip: Flip = Flip.NONE
    exif: ExifMode = ExifMode.REMOVED
    self_exif_id: int = 0
    quality: int | None = None
    seed: int | None = None


class CopyTask(_Model):
    """One copy to make: a message of the fan-out."""

    source_index: int
    # 1-based, as in the archive's names.
    copy_index: int
    seed: int
    path: str
    attempt: int = 0

    def retry(self) -> CopyTask:
        """The same copy, to be redone because its md5 was already taken."""
        return self.model_copy(update={"attempt": self.attempt + 1})
