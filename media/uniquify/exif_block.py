"""EXIF blocks as Pillow reads them, and as cameras write them: every block this package makes is upright
(Orientation 1) and carries the tags the EXIF standard requires of a JPEG."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational, ImageFileDirectory_v2
from PIL.TiffTags import LONG, SIGNED_RATIONAL, UNDEFINED

from media import tiff

Base = ExifTags.Base
GPS = ExifTags.GPS

_TIFF_HEAD = b"MM\x00\x2a\x00\x00\x00\x08"
# The Exif IFD tags whose EXIF 2.32 type Pillow would not guess from the value, and the IFD pointers.
_EXIF_TYPES = {
    ExifTags.IFD.Exif: LONG, ExifTags.IFD.GPSInfo: LONG,
    Base.ComponentsConfiguration: UNDEFINED, Base.UserComment: UNDEFINED, Base.FileSource: UNDEFINED,
    Base.SceneType: UNDEFINED, Base.OECF: UNDEFINED, Base.SpatialFrequencyResponse: UNDEFINED,
    Base.DeviceSettingDescription: UNDEFINED,
    Base.ShutterSpeedValue: SIGNED_RATIONAL, Base.BrightnessValue: SIGNED_RATIONAL,
    Base.ExposureBiasValue: SIGNED_RATIONAL, Base.AmbientTemperature: SIGNED_RATIONAL,
    Base.WaterDepth: SIGNED_RATIONAL, Base.Acceleration: SIGNED_RATIONAL,
    Base.CameraElevationAngle: SIGNED_RATIONAL,
    Base.StandardOutputSensitivity: LONG, Base.RecommendedExposureIndex: LONG, Base.ISOSpeed: LONG,
    Base.ISOSpeedLatitudeyyy: LONG, Base.ISOSpeedLatitudezzz: LONG,
}  # fmt: skip
# What the EXIF standard requires of a JPEG and every camera writes (exiftool -validate checks them):
# their absence would give a synthetic block away.
_REQUIRED_IFD0 = {Base.XResolution: IFDRational(72, 1), Base.YResolution: IFDRational(72, 1),
                  Base.ResolutionUnit: 2, Base.YCbCrPositioning: 1}
_REQUIRED_EXIF = {Base.ExifVersion: b"0232", Base.ComponentsConfiguration: b"\x01\x02\x03\x00",
                  Base.FlashPixVersion: b"0100", Base.ColorSpace: 1}


def exif_bytes_of(image: Image.Image) -> bytes:
    """``image``'s EXIF block; empty when it has none or it is broken."""
    # A broken EXIF block is no reason to fail a copy; it only leaves nothing to be similar to.
    try:
        return image.getexif().tobytes()
    except Exception:
        return b""


def load_exif(block: bytes) -> Image.Exif:
    """The tags of ``block``; none when it cannot be read."""
    exif = Image.Exif()
    try:
        exif.load(block)
    except Exception:
        return Image.Exif()
    return exif


def sub_ifd(exif: Image.Exif, ifd: int) -> Mapping[int, Any]:
    """The Exif or GPS IFD of ``exif``; empty when missing or broken."""
    try:
        return exif.get_ifd(ifd)
    except Exception:
        return {}


def exif_block(ifd0: Mapping[int, Any], exif_ifd: Mapping[int, Any], gps: Mapping[int, Any]) -> bytes:
    """A big-endian EXIF block: IFD0, then the Exif IFD and the GPS IFD it points to.

    Assembled IFD by IFD because ``Image.Exif.tobytes`` guesses the type of most Exif IFD tags, writing
    UNDEFINED ones as BYTE and non-negative signed rationals as unsigned, which no camera does.
    """
    main = {**_REQUIRED_IFD0, **ifd0, Base.Orientation: 1}
    subs = [(ExifTags.IFD.Exif, {**_REQUIRED_EXIF, **exif_ifd})]
    if gps:
        subs.append((ExifTags.IFD.GPSInfo, {GPS.GPSVersionID: b"\x02\x03\x00\x00", **gps}))
    return b"Exif\x00\x00" + tiff.lay_out(_TIFF_HEAD, main, dict(subs), directory=_ifd_bytes, pointer=int)


def _ifd_bytes(tags: Mapping[int, Any], group: int | None, offset: int) -> bytes:
    ifd = ImageFileDirectory_v2(ifh=_TIFF_HEAD, group=group)
    for tag, value in tags.items():
        if tag in _EXIF_TYPES:
            ifd.tagtype[tag] = _EXIF_TYPES[tag]
        ifd[tag] = value
    return ifd.tobytes(offset)


def rational(value: float | Fraction) -> IFDRational:
    """``value`` as an EXIF rational, its denominator at most 10000."""
    fraction = value if isinstance(value, Fraction) else Fraction(value).limit_denominator(10000)
    return IFDRational(fraction.numerator, fraction.denominator)
