"""The metadata groups exiftool reports in a file, named as StripResult names them."""

from __future__ import annotations

from typing import Any

_NOT_METADATA = frozenset({"File", "System", "ExifTool", "Composite", "JFIF", "APP14", "RIFF", "GIF", "QuickTime"})
# An HDR gain map's XMP (iPhone HEIC) tells how to render the gain map image, which is part of the
# picture and which exiftool cannot remove; the toolkit name is in every XMP packet.
_XMP_RENDERING = frozenset({"XMP-HDRGainMap", "XMP-x"})
_QUICKTIME_METADATA = frozenset({"ItemList", "UserData", "Keys"})
_THUMBNAILS = frozenset({"ThumbnailImage", "ThumbnailTIFF", "PreviewImage", "OtherImage", "JpgFromRaw"})
# The tags exiftool keeps because the image cannot be decoded without them (TIFF IFD0, PNG IHDR and
# the rendering chunks): structure, not metadata.
_TIFF_STRUCTURE = frozenset(
    {"SubfileType", "OldSubfileType", "ImageWidth", "ImageHeight", "BitsPerSample", "Compression",
     "PhotometricInterpretation", "Thresholding", "FillOrder", "StripOffsets", "SamplesPerPixel",
     "RowsPerStrip", "StripByteCounts", "PlanarConfiguration", "Predictor", "ColorMap", "TileWidth",
     "TileLength", "TileOffsets", "TileByteCounts", "ExtraSamples", "SampleFormat", "JPEGTables",
     "YCbCrCoefficients", "YCbCrSubSampling", "YCbCrPositioning", "ReferenceBlackWhite", "XResolution",
     "YResolution", "ResolutionUnit", "T4Options", "T6Options", "InkSet", "TransferFunction",
     "WhitePoint", "PrimaryChromaticities", "SMinSampleValue", "SMaxSampleValue", "MinSampleValue",
     "MaxSampleValue"}
)  # fmt: skip
_PNG_STRUCTURE = frozenset(
    {"ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter", "Interlace",
     "Palette", "Transparency", "Gamma", "WhitePointX", "WhitePointY", "RedX", "RedY", "GreenX",
     "GreenY", "BlueX", "BlueY", "SRGBRendering", "SignificantBits", "PixelsPerUnitX",
     "PixelsPerUnitY", "PixelUnits", "BackgroundColor", "AnimationFrames", "AnimationPlays",
     "ProfileName", "ColorPrimaries", "TransferCharacteristics", "MatrixCoefficients",
     "VideoFullRangeFlag"}
)  # fmt: skip


def metadata_groups(exiftool_json: dict[str, Any]) -> set[str]:
    """The metadata groups (EXIF, GPS, XMP, Orientation...) in exiftool's ``-G0:1`` JSON of one file."""
    groups = set()
    for key in exiftool_json:
        parts = key.split(":")
        group = _metadata_group(parts[0], parts[1] if len(parts) == 3 else parts[0], parts[-1])
        if len(parts) >= 2 and group is not None:
            groups.add(group)
    return groups


def _metadata_group(family0: str, family1: str, tag: str) -> str | None:
    if family0 == "Composite":
        return None
    if tag == "Orientation" and family0 == "EXIF":
        return "Orientation"
    if tag == "Copyright" and family0 in ("EXIF", "PNG", "QuickTime"):
        return "Copyright"
    if family1 == "GPS" or tag.startswith("GPS"):
        return "GPS"
    if tag in _THUMBNAILS or family1 == "IFD1":
        return "Thumbnail"
    if tag == "Comment":
        return "Comment"
    if family0 == "EXIF":
        return None if family1 == "IFD0" and tag in _TIFF_STRUCTURE else "EXIF"
    if family0 == "XMP" and family1 in _XMP_RENDERING:
        return None
    if family0 == "PNG":
        return None if tag in _PNG_STRUCTURE else "Text"
    if family0 == "QuickTime" and family1 in _QUICKTIME_METADATA:
        return family1
    return None if family0 in _NOT_METADATA else family0
