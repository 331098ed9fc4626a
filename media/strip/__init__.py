"""Metadata stripping: remove what describes a picture, never the picture.

``strip_metadata(data, keep, exiftool)`` removes EXIF (with GPS, maker notes and thumbnails), IPTC,
XMP, Photoshop resources, comments, text chunks and embedded preview images, without re-encoding:
every byte of coded image data is copied as it is, so the decoded pixels are identical.

What ``keep`` may hold (``KEEP_DEFAULT`` is orientation and icc):

- ``orientation``: the EXIF Orientation (1-8) is kept, alone in a new minimal EXIF block (IFD0 with
  Orientation, no other IFD), so the image still displays upright. HEIC/HEIF rotate through their
  ``irot``/``imir`` properties, which are part of the image and always stay.
- ``icc``: the ICC profile is kept, so colours stay as the author meant them.
- ``copyright``: the EXIF Copyright is kept in that same minimal block (PNG: also a text chunk with
  the registered keyword "Copyright"; MP4/MOV: the QuickTime Copyright).

JPEG, PNG, WebP and GIF go through our own walkers (media/strip/jpeg.py, png.py, webp.py, gif.py); TIFF,
HEIC/HEIF and MP4/MOV through exiftool (media/strip/exiftool_formats.py). Each module says what it keeps.
Other formats fail with strip_unsupported_format. ``removed`` and ``kept`` name the groups that
were present: EXIF, GPS, MakerNotes, Thumbnail, XMP, IPTC, Photoshop, Comment, ICC_Profile,
Orientation, Copyright, MPF, FlashPix, Text, Trailer...
"""

from __future__ import annotations

from collections.abc import Callable

from media.exiftool_port import Exiftool
from media.media_type import GIF, JPEG, PNG, WEBP, MediaType, check_media
from media.strip.exiftool_formats import EXIFTOOL_FORMATS, strip_with_exiftool
from media.strip.exiftool_groups import metadata_groups
from media.strip.gif import strip_gif
from media.strip.jpeg import strip_jpeg
from media.strip.png import strip_png
from media.strip.report import KEEP_DEFAULT, KEPT_GROUPS, StripResult, StripUnsupported
from media.strip.webp import strip_webp

__all__ = [
    "KEEP_DEFAULT", "KEPT_GROUPS", "StripResult", "StripUnsupported", "metadata_groups", "strip_jpeg",
    "strip_metadata", "strip_png", "strip_webp",
]  # fmt: skip

# The formats whose structure we walk ourselves, copying the image data byte for byte.
WALKERS: dict[MediaType, Callable[[bytes, frozenset[str]], StripResult]] = {
    JPEG: strip_jpeg,
    PNG: strip_png,
    WEBP: strip_webp,
    GIF: strip_gif,
}


def strip_metadata(data: bytes, keep: frozenset[str], exiftool: Exiftool) -> StripResult:
    """``data`` without its metadata (see the module docstring); raises only schemas.errors types."""
    media = check_media(data)
    if media in WALKERS:
        return WALKERS[media](data, keep)
    if media in EXIFTOOL_FORMATS:
        return strip_with_exiftool(data, media, keep, exiftool)
    raise StripUnsupported(f"cannot strip metadata from {media.mime} (.{media.extension}) files")
