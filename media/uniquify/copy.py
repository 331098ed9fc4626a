"""One copy of one source, as its task says.

Each copy: orientation applied, then the transforms (media.uniquify.pixels), then a JPEG with the
source's RGB ICC profile and the EXIF of the chosen mode, Orientation 1. Pixels are converted to RGB; a
grey or CMYK profile no longer describes them and is dropped; transparent areas are composited on white.
A source is decoded once for all the copies made of it (media.uniquify.source).

The manifest's ``phash_distance`` compares the source's pHash with the copy's, hashed from its rendered
pixels reduced (as libjpeg's reduced decode does for a JPEG) rather than from its decoded JPEG. With the
default parameters it is 0 to 12 (bench/uniquify_loop.py prints the spread); tests/test_uniquify_copies.py
holds copies to that range.

Same source bytes, parameters, task and library versions give byte-identical copies: every random
choice comes from the task's seed. Copies never repeat each other or the source: the fan-in keeps the
md5s it has seen (the sources' first) and redoes a copy whose md5 is taken with ``task.retry()``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import imagehash
from PIL import Image

from media.phash import hamming
from media.uniquify.exif import copy_exif
from media.uniquify.params import InvalidField
from media.uniquify.pixels import choose_transforms, encode, render
from media.uniquify.plan import plan_copies
from media.uniquify.source import DecodedSource, decode_source
from schemas.uniquify import CopyTask, ExifMode, UniquifyParams

# A JPEG's pHash is taken from its decode at the largest DCT scale (1/2, 1/4, 1/8) keeping this many
# pixels a side (media/phash.py); a copy's pixels are reduced by the same factor.
_PHASH_SIDE = 256


@dataclass(frozen=True)
class CopyResult:
    data: bytes
    md5: str
    width: int
    height: int
    transforms: dict[str, Any]
    phash_distance: int

    @property
    def size(self) -> int:
        return len(self.data)

    def entry(self, task: CopyTask) -> dict[str, Any]:
        """This copy's line in the manifest; small enough for the fan-in to keep for every copy."""
        return {
            "path": task.path,
            "source": task.source_index,
            "copy": task.copy_index,
            "md5": self.md5,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "transforms": self.transforms,
            "phash_distance": self.phash_distance,
        }


def make_copy(
    source: bytes | DecodedSource, task: CopyTask, params: UniquifyParams, donor: bytes | None
) -> CopyResult:
    """One copy of ``source`` (its bytes, or decoded once for many copies) as ``task`` says; ``donor`` is
    ``donor_exif``'s block, for exif=3."""
    if params.exif is ExifMode.DONOR and donor is None:
        raise InvalidField("self_exif_id", "exif=3 needs the donor's EXIF")
    if isinstance(source, bytes):
        source = decode_source(source)
    quality = params.quality or source.quality
    rng = random.Random(task.seed)
    transforms = choose_transforms(params, rng)
    image = render(source.pixels, transforms)
    exif = copy_exif(params, source.exif, donor, rng, image.size)
    data = encode(image, quality, task.attempt, source.icc, exif)
    applied = {**transforms.as_dict(), "exif": params.exif.name.lower(), "quality": quality}
    if task.attempt:
        applied["retry"] = task.attempt
    return CopyResult(
        data=data,
        md5=hashlib.md5(data).hexdigest(),
        width=image.width,
        height=image.height,
        transforms=applied,
        phash_distance=hamming(source.phash, pixels_phash(image)),
    )


def pixels_phash(image: Image.Image) -> str:
    """The pHash of ``image`` as media.phash takes it of the same picture encoded as a JPEG."""
    factor = max((f for f in (2, 4, 8) if min(image.size) // f >= _PHASH_SIDE), default=1)
    return str(imagehash.phash(image.reduce(factor) if factor > 1 else image))


def uniquify_single(source: bytes, params: UniquifyParams, seed: int, donor: bytes | None = None) -> bytes:
    """The synchronous route's one copy, never byte-identical to the source."""
    task = plan_copies(params.model_copy(update={"copies": 1}), ["image"], seed)[0]
    source_md5 = hashlib.md5(source).hexdigest()
    while (result := make_copy(source, task, params, donor)).md5 == source_md5:
        task = task.retry()
    return result.data
