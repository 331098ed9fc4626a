"""TIFF, HEIC/HEIF and MP4/MOV stripping, through exiftool: ``-all=``, then ``-tagsfromfile @``
for what keep asks for.

exiftool cannot delete what the format needs to decode: TIFF keeps its image-structure IFD0 tags,
HEIC/HEIF keep their item properties (size, colour, rotation) and auxiliary images (thumbnail, depth
and gain maps); MP4/MOV keep their movie, track and media headers: durations, dimensions, handler and
codec names, and the creation and modification times in mvhd/tkhd/mdhd. Their metadata (ItemList,
UserData, Keys, XMP, location) goes. Every result is read back with exiftool; anything left that keep
did not ask for fails with strip_unsupported_format, never a partial clean.
"""

from __future__ import annotations

from media.exiftool_port import Exiftool
from media.media_type import HEIC, HEIF, MOV, MP4, TIFF, MediaType
from media.strip.exiftool_groups import metadata_groups
from media.strip.report import KEPT_GROUPS, StripResult, StripUnsupported
from schemas.errors import ExtractFailed

EXIFTOOL_FORMATS = frozenset({TIFF, HEIC, HEIF, MP4, MOV})

_EXIFTOOL_COPIES = (("icc", "ICC_Profile"), ("orientation", "Orientation"), ("copyright", "Copyright"))
# exiftool's -all= cannot delete IFD0 from a TIFF and so leaves its descriptive tags; named one by one
# they go. GeoTIFF's tags place the raster on Earth.
_TIFF_DESCRIPTIVE = (
    "DocumentName", "ImageDescription", "Make", "Model", "PageName", "Software", "ModifyDate", "Artist",
    "HostComputer", "Copyright", "Orientation", "GeoTiffDirectory", "GeoTiffDoubleParams",
    "GeoTiffAsciiParams", "ModelTiePoint", "PixelScale", "ModelTransform",
)  # fmt: skip


def strip_with_exiftool(data: bytes, media: MediaType, keep: frozenset[str], exiftool: Exiftool) -> StripResult:
    before = metadata_groups(exiftool.extract(data, media.extension))
    try:
        cleaned = exiftool.write(data, media.extension, *_exiftool_args(media, keep))
    except ExtractFailed as exc:
        if exc.code != "write_failed":
            raise
        raise StripUnsupported(f"exiftool cannot rewrite this {media.mime} file") from exc
    after = metadata_groups(exiftool.extract(cleaned, media.extension))
    left = after - {KEPT_GROUPS[option] for option in keep}
    if left:
        raise StripUnsupported(f"exiftool cannot remove {', '.join(sorted(left))} from this {media.mime} file")
    if media in (HEIC, HEIF) and "orientation" in keep:
        # irot/imir, which stay, turn the image upright; the EXIF Orientation only repeats them.
        after |= before & {"Orientation"}
    return StripResult(cleaned, media.extension, sorted(before - after), sorted(after))


def _exiftool_args(media: MediaType, keep: frozenset[str]) -> list[str]:
    copies = [tag for option, tag in _EXIFTOOL_COPIES if option in keep]
    if media in (HEIC, HEIF):
        # Readers must ignore a HEIF's EXIF Orientation, and a new EXIF item would get exiftool's
        # mandatory tags (resolution, YCbCrPositioning...) with it.
        copies = [tag for tag in copies if tag != "Orientation"]
    args = ["-all="]
    if media is TIFF:
        args += [f"-IFD0:{tag}=" for tag in _TIFF_DESCRIPTIVE if tag not in copies]
    if copies:
        args += ["-tagsfromfile", "@", *(f"-{tag}" for tag in copies)]
    return args
