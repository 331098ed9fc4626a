"""Opening images with Pillow, HEIC/HEIF included, its failures raised as the typed errors of schemas.errors."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pillow_heif
from PIL import Image, UnidentifiedImageError

from schemas.errors import CorruptMedia, TooLarge, UnsupportedMedia

pillow_heif.register_heif_opener()


def open_image(data: bytes, formats: Sequence[str] | None = None) -> Image.Image:
    """``data`` opened by the Pillow plugins of ``formats`` (all when None): header read, pixels not yet."""
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"the image has too many pixels to decode: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia("the bytes are not an image format that can be decoded") from exc
    # A plugin that recognised its format may still fail on a broken header, with any exception.
    except Exception as exc:
        raise CorruptMedia(f"the image header cannot be read: {exc}") from exc


@contextmanager
def decoding(image: Image.Image) -> Iterator[Image.Image]:
    """Pillow work on ``image``'s pixels, whose failure means the file is broken: CorruptMedia.

    Decoders of untrusted bytes fail in many ways (OSError, SyntaxError, struct.error, ValueError...);
    whichever it is, the client needs to know the file cannot be decoded.
    """
    try:
        yield image
    except Exception as exc:
        raise CorruptMedia(f"the {image.format} image cannot be decoded: {exc}") from exc
