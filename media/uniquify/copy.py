"""One copy of one source, as its task says.

Each copy: orientation applied, then the transforms (media.uniquify.pixels), then a JPEG with the
source's RGB ICC profile and the EXIF of the chosen mode, Orientation 1. Pixels are converted to RGB; a
grey or CMYK profile no longer describes them and is dropped; transparent areas are composited on white.

Same source bytes, parameters, task and library versions give byte-identical copies: every random
choice comes from the task's seed. Copies never repeat each other or the source: the fan-in keeps the
md5s it has seen (the sources' first) and redoes a copy whose md5 is taken with ``task.retry()``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from media.images import decoding, open_image
from media.metadata import jpeg_quality
from media.phash import hamming, phash_image
from media.uniquify.exif import copy_exif
from media.uniquify.exif_block import exif_bytes_of
from media.uniquify.params import InvalidField
from media.uniquify.pixels import apply, choose_transforms, encode, to_rgb
from media.uniquify.plan import plan_copies
from schemas.uniquify import CopyTask, ExifMode, UniquifyParams

NON_JPEG_QUALITY = 90


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


def make_copy(source: bytes, task: CopyTask, params: UniquifyParams, donor: bytes | None) -> CopyResult:
    """One copy of ``source`` as ``task`` says; ``donor`` is ``donor_exif``'s block, for exif=3."""
    if params.exif is ExifMode.DONOR and donor is None:
        raise InvalidField("self_exif_id", "exif=3 needs the donor's EXIF")
    image = open_image(source)
    with decoding(image):
        image.load()
    quality = params.quality or _source_quality(image)
    icc = image.info.get("icc_profile")
    source_exif = exif_bytes_of(image)
    rng = random.Random(task.seed)
    transforms = choose_transforms(params, rng)
    with decoding(image):
        ImageOps.exif_transpose(image, in_place=True)
        image = to_rgb(image)
    image = apply(image, transforms)
    exif = copy_exif(params, source_exif, donor, rng, image.size)
    data = encode(image, quality, task.attempt, icc if _is_rgb_profile(icc) else None, exif)
    applied = {**transforms.as_dict(), "exif": params.exif.name.lower(), "quality": quality}
    if task.attempt:
        applied["retry"] = task.attempt
    return CopyResult(
        data=data,
        md5=hashlib.md5(data).hexdigest(),
        width=image.width,
        height=image.height,
        transforms=applied,
        phash_distance=hamming(phash_image(source).hash, phash_image(data).hash),
    )


def uniquify_single(source: bytes, params: UniquifyParams, seed: int, donor: bytes | None = None) -> bytes:
    """The synchronous route's one copy, never byte-identical to the source."""
    task = plan_copies(params.model_copy(update={"copies": 1}), ["image"], seed)[0]
    source_md5 = hashlib.md5(source).hexdigest()
    while (result := make_copy(source, task, params, donor)).md5 == source_md5:
        task = task.retry()
    return result.data


def _source_quality(image: Image.Image) -> int:
    tables = getattr(image, "quantization", None)
    return (jpeg_quality(tables) if tables else None) or NON_JPEG_QUALITY


def _is_rgb_profile(icc: bytes | None) -> bool:
    return bool(icc) and icc[16:20] == b"RGB "
