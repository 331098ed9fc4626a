"""A source decoded once for all the copies made of it: its upright RGB pixels and what every copy takes from it.

A decoded source holds 3 bytes a pixel: 36 MB for 12 MP (4000x3000), 72 MB for 24 MP, 150 MB for 50 MP.
``DecodedSources`` keeps the most recently used ones up to a byte budget; a source larger than the whole
budget is decoded for its copy and not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageOps

from media.images import decoding, open_image
from media.metadata import jpeg_quality
from media.phash import phash_image
from media.uniquify.exif_block import exif_bytes_of
from media.uniquify.pixels import Pixels, to_rgb

NON_JPEG_QUALITY = 90


@dataclass(frozen=True)
class DecodedSource:
    pixels: Pixels
    # The source's estimated JPEG quality, NON_JPEG_QUALITY for other formats.
    quality: int
    # Only an RGB profile still describes the RGB pixels; a grey or CMYK one is dropped.
    icc: bytes | None
    exif: bytes
    phash: str

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes


def decode_source(data: bytes) -> DecodedSource:
    """Raises the typed errors of media.images when ``data`` is not an image that can be decoded."""
    image = open_image(data)
    with decoding(image):
        image.load()
        quality = _source_quality(image)
        icc = image.info.get("icc_profile")
        exif = exif_bytes_of(image)
        ImageOps.exif_transpose(image, in_place=True)
        pixels = Pixels.of(to_rgb(image))
    return DecodedSource(
        pixels=pixels,
        quality=quality,
        icc=icc if _is_rgb_profile(icc) else None,
        exif=exif,
        # The hash the phash op gives the source, so that a copy's distance compares with /v1/similar's.
        phash=phash_image(data).hash,
    )


class DecodedSources:
    """Least recently used decoded sources, at most ``max_bytes`` of pixels together."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.kept: OrderedDict[str, DecodedSource] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(source.nbytes for source in self.kept.values())

    def get(self, key: str, load: Callable[[str], bytes]) -> DecodedSource:
        """The decoded source of ``key``, from ``load(key)``'s bytes when not kept; a failure is not kept."""
        if key in self.kept:
            self.kept.move_to_end(key)
            return self.kept[key]
        source = decode_source(load(key))
        if source.nbytes <= self.max_bytes:
            while self.kept and self.nbytes + source.nbytes > self.max_bytes:
                self.kept.popitem(last=False)
            self.kept[key] = source
        return source


def _source_quality(image: Image.Image) -> int:
    tables = getattr(image, "quantization", None)
    return (jpeg_quality(tables) if tables else None) or NON_JPEG_QUALITY


def _is_rgb_profile(icc: bytes | None) -> bool:
    return bool(icc) and icc[16:20] == b"RGB "
