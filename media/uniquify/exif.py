"""Synthetic EXIF for the copies: a random camera's, one similar to the source's, or a stored donor's.

Dates are drawn from fixed windows, never from the clock, so a seed always gives the same bytes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from PIL import ExifTags
from PIL.TiffImagePlugin import IFDRational

from media.images import open_image
from media.uniquify.cameras import CAMERAS, EXPOSURES, F_STOPS, ISOS, LATEST_DATE
from media.uniquify.exif_block import exif_block, exif_bytes_of, load_exif, rational, sub_ifd
from schemas.errors import InvalidParameter
from schemas.uniquify import ExifMode, UniquifyParams

Base = ExifTags.Base
GPS = ExifTags.GPS

_DATE_FORMAT = "%Y:%m:%d %H:%M:%S"
# A similar copy's dates move by one minute to an hour, its position by 5 to 30 metres.
_SHIFT_SECONDS = (60, 3600)
_JITTER_METRES = (5.0, 30.0)
_METRES_PER_DEGREE = 111_320.0
_DESCRIPTIVE_IFD0 = (Base.ImageDescription, Base.Make, Base.Model, Base.XResolution, Base.YResolution,
                     Base.ResolutionUnit, Base.Software, Base.DateTime, Base.Artist, Base.Copyright)
# Pointers and blobs whose offsets would be stale in a rewritten block.
_UNPORTABLE_EXIF = (Base.MakerNote, ExifTags.IFD.Interop)
_MAX_EXIF_BYTES = 65_000


def random_exif(rng: random.Random) -> bytes:
    """A consistent EXIF block of a random body and lens from CAMERAS, without GPS."""
    camera = rng.choice(CAMERAS)
    lens = rng.choice(camera.lenses)
    focal = lens.focal[0] if lens.focal[0] == lens.focal[1] else rng.randint(*map(int, lens.focal))
    moment = _datetime_text(_random_moment(rng, camera.released))
    ifd0 = {Base.Make: camera.make, Base.Model: camera.model, Base.Software: camera.software,
            Base.DateTime: moment}
    exif_ifd = {
        Base.DateTimeOriginal: moment,
        Base.DateTimeDigitized: moment,
        Base.ExposureTime: rational(rng.choice(EXPOSURES)),
        Base.FNumber: rational(rng.choice(lens.f_numbers(focal))),
        Base.ISOSpeedRatings: rng.choice([iso for iso in ISOS if camera.iso[0] <= iso <= camera.iso[1]]),
        Base.FocalLength: rational(focal),
        Base.LensMake: lens.make,
        Base.LensModel: lens.model,
    }  # fmt: skip
    return exif_block(ifd0, exif_ifd, {})


def _random_moment(rng: random.Random, earliest: date) -> datetime:
    day = date.fromordinal(rng.randint(earliest.toordinal(), LATEST_DATE.toordinal()))
    # Daylight hours, when most photos are taken.
    return datetime(day.year, day.month, day.day, 7) + timedelta(seconds=rng.randrange(14 * 3600))


def similar_exif(source_exif: bytes, rng: random.Random) -> bytes:
    """The source's body, lens and settings one step apart, dates shifted, GPS moved a few metres.

    A source without Make and Model has nothing to be similar to and gets ``random_exif``. Tags the
    source lacks stay absent, so nothing contradicts what it had.
    """
    source = load_exif(source_exif)
    exif_ifd = sub_ifd(source, ExifTags.IFD.Exif)
    make, model = _text(source.get(Base.Make)), _text(source.get(Base.Model))
    if not (make and model):
        return random_exif(rng)
    shift = timedelta(seconds=rng.choice((-1, 1)) * rng.randint(*_SHIFT_SECONDS))
    ifd0 = _present({
        Base.Make: make,
        Base.Model: model,
        Base.Software: _text(source.get(Base.Software)),
        Base.DateTime: _shifted(source.get(Base.DateTime), shift),
    })
    similar = _present({
        Base.DateTimeOriginal: _shifted(exif_ifd.get(Base.DateTimeOriginal), shift),
        Base.DateTimeDigitized: _shifted(exif_ifd.get(Base.DateTimeDigitized), shift),
        Base.ExposureTime: _step(exif_ifd.get(Base.ExposureTime), EXPOSURES, rng, rational),
        # Never wider than the source: its lens may open no further.
        Base.FNumber: _step(exif_ifd.get(Base.FNumber), F_STOPS, rng, rational, (0, 1)),
        Base.ISOSpeedRatings: _step(exif_ifd.get(Base.ISOSpeedRatings), ISOS, rng, int),
        Base.FocalLength: _positive_rational(exif_ifd.get(Base.FocalLength)),
        Base.LensMake: _text(exif_ifd.get(Base.LensMake)),
        Base.LensModel: _text(exif_ifd.get(Base.LensModel)),
    })  # fmt: skip
    return exif_block(ifd0, similar, _jittered_gps(sub_ifd(source, ExifTags.IFD.GPSInfo), rng))


def _present(tags: dict[int, Any]) -> dict[int, Any]:
    return {tag: value for tag, value in tags.items() if value not in (None, False, "")}


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.replace("\x00", " ").strip()[:64] or None


def _positive_rational(value: Any) -> IFDRational | None:
    number = _positive(value)
    return None if number is None else rational(number)


def _positive(value: Any) -> float | None:
    if isinstance(value, tuple) and value:
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _step(
    value: Any, scale: Sequence[Any], rng: random.Random, kind: Any, steps: tuple[int, int] = (-1, 1)
) -> Any:
    """The scale value nearest the source's, moved a random number of steps (within ``steps``)."""
    number = _positive(value)
    if number is None:
        return None
    nearest = min(range(len(scale)), key=lambda index: abs(math.log(float(scale[index]) / number)))
    return kind(scale[min(len(scale) - 1, max(0, nearest + rng.randint(*steps)))])


def _shifted(value: Any, shift: timedelta) -> str | None:
    try:
        return _datetime_text(datetime.strptime(_text(value) or "", _DATE_FORMAT) + shift)
    except ValueError:
        return None


def _datetime_text(moment: datetime) -> str:
    return moment.strftime(_DATE_FORMAT)


def _jittered_gps(gps: Mapping[int, Any], rng: random.Random) -> dict[int, Any]:
    latitude = _degrees(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef), "S")
    longitude = _degrees(gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef), "W")
    if latitude is None or longitude is None or abs(latitude) > 89 or abs(longitude) > 180:
        return {}
    distance, bearing = rng.uniform(*_JITTER_METRES), rng.uniform(0, 2 * math.pi)
    latitude += distance * math.cos(bearing) / _METRES_PER_DEGREE
    longitude += distance * math.sin(bearing) / (_METRES_PER_DEGREE * math.cos(math.radians(latitude)))
    longitude = (longitude + 180) % 360 - 180
    moved = {
        GPS.GPSLatitudeRef: "N" if latitude >= 0 else "S",
        GPS.GPSLatitude: _dms(abs(latitude)),
        GPS.GPSLongitudeRef: "E" if longitude >= 0 else "W",
        GPS.GPSLongitude: _dms(abs(longitude)),
    }
    altitude = _positive(gps.get(GPS.GPSAltitude))
    if altitude is not None:
        moved[GPS.GPSAltitudeRef] = b"\x01" if gps.get(GPS.GPSAltitudeRef) in (1, b"\x01") else b"\x00"
        moved[GPS.GPSAltitude] = rational(altitude)
    return moved


def _degrees(dms: Any, ref: Any, negative: str) -> float | None:
    try:
        degrees, minutes, seconds = (float(part) for part in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(value):
        return None
    return -value if _text(ref) == negative else value


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(round(seconds * 10000), 10000)


def donor_exif(data: bytes) -> bytes:
    """The EXIF block of an uploaded donor image, stripped of what cannot move to another file.

    Kept: IFD0's descriptive tags, the Exif IFD without MakerNote, the GPS IFD. Dropped: the thumbnail
    and IFD0's image-structure tags (the donor's strips, sizes and compression).
    """
    source = load_exif(exif_bytes_of(open_image(data)))
    ifd0 = {tag: source[tag] for tag in _DESCRIPTIVE_IFD0 if tag in source}
    exif_ifd = {tag: value for tag, value in sub_ifd(source, ExifTags.IFD.Exif).items()
                if tag not in _UNPORTABLE_EXIF}
    gps = dict(sub_ifd(source, ExifTags.IFD.GPSInfo))
    if not (ifd0 or exif_ifd or gps):
        raise InvalidParameter("the donor image has no EXIF data")
    try:
        block = exif_block(ifd0, exif_ifd, gps)
    except Exception as exc:
        raise InvalidParameter(f"the donor's EXIF cannot be rewritten: {exc}") from exc
    if len(block) > _MAX_EXIF_BYTES:
        raise InvalidParameter(f"the donor's EXIF is {len(block)} bytes, more than a JPEG holds")
    return block


def copy_exif(
    params: UniquifyParams, source_exif: bytes, donor: bytes | None, rng: random.Random, size: tuple[int, int]
) -> bytes:
    """The copy's EXIF block: upright (as ``exif_block`` makes every block), with the copy's pixel size."""
    if params.exif is ExifMode.REMOVED:
        return b""
    if params.exif is ExifMode.RANDOM:
        block = random_exif(rng)
    elif params.exif is ExifMode.SIMILAR:
        block = similar_exif(source_exif, rng)
    else:
        block = donor or b""
    exif = load_exif(block)
    ifd0 = {tag: value for tag, value in exif.items() if tag not in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)}
    width, height = size
    exif_ifd = {**sub_ifd(exif, ExifTags.IFD.Exif), Base.ExifImageWidth: width, Base.ExifImageHeight: height}
    return exif_block(ifd0, exif_ifd, sub_ifd(exif, ExifTags.IFD.GPSInfo))
