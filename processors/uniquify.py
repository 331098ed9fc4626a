"""Uniquification: many slightly different JPEG copies of each source image, and the zip that holds them.

The pure half of the feature (no Kafka, HTTP or object store): parameter parsing and validation, the
plan of copies a job fans out, one copy from one source, EXIF synthesis, the manifest and the zip
writer. The API follows imgfactory's ``/async/unique`` and ``/sync/single/unique``.

Parameters (query-string values; the JSON ones are objects whose missing keys take the defaults,
``null`` or ``"enable": false`` switches them off):

============  ==============================  ==========================  ===========================
parameter     meaning                         default                     accepted
============  ==============================  ==========================  ===========================
copies        copies of each source           10                          1..max_copies (settings)
names         0 hashed, 1 sequential,         0                           0..2
              2 original (``<stem>_<n>.jpg``)
folders       0 one folder, 1 a folder per    0                           0..2
              source, 2 a folder per copy
              number holding one copy of
              every source
rotate        degrees, counter-clockwise      {enable, min 0, max 2}      -45..45
crop          percent of the side's length    null (off); when enabled    side 0..3, percent 0..40
              cut from each chosen side;      side 1, min 1, max 5
              side 0 one random side, 1 two,
              2 all four, 3 a random set
saturation    percent of the original         {enable, min 90, max 110}   0..300
brightness    percent of the original         {enable, min 90, max 110}   0..300
contrast      percent added to the contrast   {enable, min 1, max 15}     0..100
flip          0 none, 1 horizontal,           0                           0..3
              2 vertical, 3 both
exif          0 removed, 1 random camera,     0                           0..3
              2 similar to the source's,
              3 a stored donor's
self_exif_id  the donor record for exif=3     0 (none)                    1..2**63-1, required by 3
quality       JPEG quality of the copies      the source's estimated      1..100
                                              quality (90 for non-JPEG)
seed          makes a job reproducible        drawn by the caller         0..2**63-1
============  ==============================  ==========================  ===========================

Bounds the reference leaves open: rotations beyond 45 degrees lose most of the picture to the
border-free crop; 40 percent per side keeps at least a fifth of the image when opposite sides are both
cut; 300 percent saturation or brightness is already a washed-out image; a contrast percentage is how
much more contrast (ImageEnhance factor 1 + p/100). Every random value is drawn uniformly from
[min, max] and rounded to two decimals, so the manifest records exactly what was applied.

Each copy: orientation applied, then rotation, crop and flip resampled in one affine pass (a rotated
copy is cut to the largest rectangle of the same aspect ratio inside the rotated picture, so it has no
filled corners and comes out slightly smaller), then saturation, brightness and contrast as one colour
matrix (the ImageEnhance formulas composed, clipped once at the end), then a JPEG with the source's RGB
ICC profile and the EXIF of the chosen mode, Orientation 1. Pixels are converted to RGB; a grey or CMYK
profile no longer describes them and is dropped; transparent areas are composited on white.

Same source bytes, parameters, task and library versions give byte-identical copies: every random
choice comes from the task's seed, derived from the job seed and the copy's position, and synthetic
dates are drawn from fixed windows, never from the clock.

Copies never repeat each other or the source: the fan-in keeps the md5s it has seen (the sources'
first) and redoes a copy whose md5 is taken with ``task.retry()``. A retry changes nothing but a few
high-frequency entries of the luminance quantisation table, written in the file, and every attempt
number gets different entries, so each retry yields new bytes and the loop ends.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum
from fractions import Fraction
from typing import IO, Any

import pillow_heif
from PIL import ExifTags, Image, ImageOps, ImageStat
from PIL.TiffImagePlugin import IFDRational, ImageFileDirectory_v2
from PIL.TiffTags import LONG, SIGNED_RATIONAL, UNDEFINED
from pydantic import BaseModel, ConfigDict

from processors.metadata import LIBJPEG_TABLES, jpeg_quality
from processors.names import safe_name
# phash's opener maps Pillow's failures on untrusted bytes to the typed errors; one mapping for both.
from processors.phash import _open, hamming, phash_image
from schemas.errors import CorruptMedia, InvalidParameter

pillow_heif.register_heif_opener()

Base = ExifTags.Base
GPS = ExifTags.GPS

MAX_SEED = 2**63 - 1
NON_JPEG_QUALITY = 90
ROTATE_BOUNDS = (-45.0, 45.0)
CROP_BOUNDS = (0.0, 40.0)
COLOUR_BOUNDS = (0.0, 300.0)
CONTRAST_BOUNDS = (0.0, 100.0)
# Whole-byte limit of a path component on common filesystems, with room for "-NN_NNN.jpg".
_MAX_STEM_BYTES = 200
_FALLBACK_STEM = "image"
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?")
_INTEGER = re.compile(r"-?[0-9]{1,20}")
# Natural-order positions of the luminance table a retry rewrites: the highest frequencies, whose
# quantisation is invisible.
_RETRY_POSITIONS = (63, 62, 55)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class InvalidField(InvalidParameter):
    """A rejected uniquification parameter; ``field`` names it (dotted inside JSON: ``crop.side``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field)


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
    model_config = ConfigDict(extra="forbid", frozen=True)


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


# --- parameters ---------------------------------------------------------------------------------

_INT_FIELDS = {
    "names": (0, 2),
    "folders": (0, 2),
    "flip": (0, 3),
    "exif": (0, 3),
    "self_exif_id": (0, MAX_SEED),
    "quality": (1, 100),
    "seed": (0, MAX_SEED),
}
_RANGE_BOUNDS = {
    "rotate": ROTATE_BOUNDS,
    "crop": CROP_BOUNDS,
    "saturation": COLOUR_BOUNDS,
    "brightness": COLOUR_BOUNDS,
    "contrast": CONTRAST_BOUNDS,
}


def parse_params(query: Mapping[str, str], max_copies: int) -> UniquifyParams:
    """The parameters of a query string; raises InvalidField naming the first bad one."""
    unknown = sorted(set(query) - set(UniquifyParams.model_fields))
    if unknown:
        raise InvalidField(unknown[0], "unknown parameter")
    bounds = {"copies": (1, max_copies), **_INT_FIELDS}
    values: dict[str, Any] = {
        name: _parse_int(name, query[name], *limits) for name, limits in bounds.items() if name in query
    }
    defaults = UniquifyParams()
    for name, limits in _RANGE_BOUNDS.items():
        if name in query:
            values[name] = _parse_range(name, query[name], getattr(defaults, name), limits)
    if values.get("exif") == ExifMode.DONOR and not values.get("self_exif_id"):
        raise InvalidField("self_exif_id", "required when exif is 3 (a donor's EXIF)")
    return UniquifyParams(**values)


def _parse_int(field: str, raw: str, low: int, high: int) -> int:
    if not _INTEGER.fullmatch(raw):
        raise InvalidField(field, f"must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}, got {value}")
    return value


def _parse_range(field: str, raw: str, default: Range, limits: tuple[float, float]) -> Range:
    try:
        document = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidField(field, f"must be a JSON object: {exc}") from None
    if document is None:
        return default.model_copy(update={"enable": False})
    if not isinstance(document, dict):
        raise InvalidField(field, 'must be a JSON object like {"enable": true, "min": 1, "max": 2}')
    fields = default.model_dump()
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise InvalidField(f"{field}.{unknown[0]}", "unknown key")
    for key, value in document.items():
        fields[key] = _range_value(f"{field}.{key}", key, value, limits)
    if fields["min"] > fields["max"]:
        raise InvalidField(field, f"min ({fields['min']:g}) is greater than max ({fields['max']:g})")
    return type(default)(**fields)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _range_value(field: str, key: str, value: Any, limits: tuple[float, float]) -> Any:
    if key == "enable":
        if not isinstance(value, bool):
            raise InvalidField(field, "must be true or false")
        return value
    if key == "side":
        if type(value) is not int or value not in CropSide._value2member_map_:
            raise InvalidField(field, "must be 0 (one side), 1 (two), 2 (all) or 3 (random)")
        return value
    # bool is an int to Python, never a number to a client.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidField(field, f"must be a number, got {json.dumps(value)[:40]}")
    if not limits[0] <= value <= limits[1]:
        raise InvalidField(field, f"must be between {limits[0]:g} and {limits[1]:g}, got {value:g}")
    return float(value)


# --- plan and archive layout --------------------------------------------------------------------


def plan_copies(params: UniquifyParams, source_names: Sequence[str], seed: int) -> list[CopyTask]:
    """Every copy of the job, source by source, with its seed and its path in the archive."""
    stems = archive_stems(source_names)
    tasks = []
    for source in range(len(source_names)):
        for copy in range(1, params.copies + 1):
            name = _file_name(params, source, copy, stems[source], seed)
            folder = _folder_name(params, source, copy, stems[source], seed)
            tasks.append(
                CopyTask(
                    source_index=source,
                    copy_index=copy,
                    seed=int.from_bytes(_digest(seed, source, copy, "pixels")[:8], "big") >> 1,
                    path=f"{folder}/{name}" if folder else name,
                )
            )
    return tasks


def archive_stems(source_names: Sequence[str]) -> list[str]:
    """One stem per source, safe as a zip entry on any OS, unique ignoring case."""
    taken: set[str] = set()
    stems = []
    for raw in source_names:
        stem = candidate = _archive_stem(raw)
        number = 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem}-{number}"
        taken.add(candidate.casefold())
        stems.append(candidate)
    return stems


def _archive_stem(raw: str) -> str:
    name = safe_name(raw, _FALLBACK_STEM)
    stem = name.rpartition(".")[0] or name
    # safe_name keeps line separators and other unusual spaces; one plain space says the same.
    stem = " ".join(_WINDOWS_FORBIDDEN.sub("_", stem).split())
    stem = stem.encode()[:_MAX_STEM_BYTES].decode(errors="ignore").rstrip(". ")
    if not stem:
        return _FALLBACK_STEM
    return f"_{stem}" if _WINDOWS_RESERVED.fullmatch(stem) else stem


def _file_name(params: UniquifyParams, source: int, copy: int, stem: str, seed: int) -> str:
    if params.names is Names.HASHED:
        return f"{_digest(seed, source, copy, 'name').hex()[:32]}.jpg"
    if params.names is Names.ORIGINAL:
        return f"{stem}_{copy}.jpg"
    number = {
        Folders.ONE: source * params.copies + copy,
        Folders.PER_SOURCE: copy,
        Folders.PER_COPY: source + 1,
    }[params.folders]
    return f"{number}.jpg"


def _folder_name(params: UniquifyParams, source: int, copy: int, stem: str, seed: int) -> str | None:
    if params.folders is Folders.ONE:
        return None
    if params.folders is Folders.PER_COPY:
        return str(copy)
    if params.names is Names.HASHED:
        return _digest(seed, source, "folder").hex()[:32]
    return stem if params.names is Names.ORIGINAL else str(source + 1)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("/".join(map(str, parts)).encode()).digest()


def manifest(
    params: UniquifyParams, seed: int, source_names: Sequence[str], entries: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """manifest.json: the job's parameters and seed, its sources, and ``CopyResult.entry`` per copy."""
    return {
        "seed": seed,
        "params": params.model_dump(mode="json"),
        "sources": [{"index": index, "name": name} for index, name in enumerate(source_names)],
        "copies": sorted(entries, key=lambda entry: (entry["source"], entry["copy"])),
    }


def write_zip(entries: Iterable[tuple[str, bytes]], fileobj: IO[bytes]) -> None:
    """Writes each entry as it comes, so only one copy is in memory; ``fileobj`` need not seek.

    JPEGs do not compress, so entries are stored; fixed timestamps keep the archive reproducible.
    """
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED) as archive:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


# --- one copy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transforms:
    """The random values one copy was given; None (or nothing cropped) for what is switched off."""

    rotate: float | None
    crop: dict[str, float]
    saturation: float | None
    brightness: float | None
    contrast: float | None
    flip: Flip

    def as_dict(self) -> dict[str, Any]:
        applied: dict[str, Any] = {
            "rotate": self.rotate,
            "crop": self.crop or None,
            "saturation": self.saturation,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "flip": self.flip.name.lower() if self.flip else None,
        }
        return {key: value for key, value in applied.items() if value is not None}


_SIDES = ("left", "top", "right", "bottom")


def choose_transforms(params: UniquifyParams, rng: random.Random) -> Transforms:
    return Transforms(
        rotate=_draw(params.rotate, rng),
        crop=_draw_crop(params.crop, rng),
        saturation=_draw(params.saturation, rng),
        brightness=_draw(params.brightness, rng),
        contrast=_draw(params.contrast, rng),
        flip=params.flip,
    )


def _draw(setting: Range, rng: random.Random) -> float | None:
    return round(rng.uniform(setting.min, setting.max), 2) if setting.enable else None


def _draw_crop(crop: Crop, rng: random.Random) -> dict[str, float]:
    if not crop.enable:
        return {}
    count = {CropSide.ONE: 1, CropSide.TWO: 2, CropSide.ALL: 4}.get(crop.side) or rng.randint(1, 4)
    chosen = set(rng.sample(_SIDES, count))
    return {side: _draw(crop, rng) for side in _SIDES if side in chosen}


def make_copy(source: bytes, task: CopyTask, params: UniquifyParams, donor: bytes | None) -> CopyResult:
    """One copy of ``source`` as ``task`` says; ``donor`` is ``donor_exif``'s block, for exif=3."""
    if params.exif is ExifMode.DONOR and donor is None:
        raise InvalidField("self_exif_id", "exif=3 needs the donor's EXIF")
    image = _decode(source)
    quality = params.quality or _source_quality(image)
    icc = image.info.get("icc_profile")
    source_exif = _exif_bytes_of(image)
    rng = random.Random(task.seed)
    transforms = choose_transforms(params, rng)
    try:
        ImageOps.exif_transpose(image, in_place=True)
        image = _to_rgb(image)
    except Exception as exc:
        raise CorruptMedia(f"the image cannot be decoded: {exc}") from exc
    image = _colour(_geometry(image, transforms), transforms)
    exif = _copy_exif(params, source_exif, donor, rng, image.size)
    data = _encode(image, quality, task.attempt, icc if _is_rgb_profile(icc) else None, exif)
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


def _decode(data: bytes) -> Image.Image:
    image = _open(data)
    try:
        image.load()
    except Exception as exc:
        raise CorruptMedia(f"the {image.format} image cannot be decoded: {exc}") from exc
    return image


def _source_quality(image: Image.Image) -> int:
    tables = getattr(image, "quantization", None)
    return (jpeg_quality(tables) if tables else None) or NON_JPEG_QUALITY


def _exif_bytes_of(image: Image.Image) -> bytes:
    # A broken EXIF block is no reason to fail a copy; it only leaves nothing to be similar to.
    try:
        return image.getexif().tobytes()
    except Exception:
        return b""


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")


def _is_rgb_profile(icc: bytes | None) -> bool:
    return bool(icc) and icc[16:20] == b"RGB "


def _geometry(image: Image.Image, transforms: Transforms) -> Image.Image:
    width, height = image.size
    scale = inscribed_scale(width, height, transforms.rotate or 0.0)
    inner_w, inner_h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    cut = {side: round((inner_w if side in ("left", "right") else inner_h) * percent / 100)
           for side, percent in transforms.crop.items()}
    out_w = max(1, inner_w - cut.get("left", 0) - cut.get("right", 0))
    out_h = max(1, inner_h - cut.get("top", 0) - cut.get("bottom", 0))
    left = (width - inner_w) / 2 + cut.get("left", 0)
    top = (height - inner_h) / 2 + cut.get("top", 0)
    if transforms.rotate is None:
        return _flip(image.crop((int(left), int(top), int(left) + out_w, int(top) + out_h)), transforms.flip)
    # Rotation, crop and flip in one resampling pass: a separate rotate would resample every pixel of
    # the full frame and then throw the corners away.
    matrix = _affine(width, height, transforms.rotate, (left, top, out_w, out_h), transforms.flip)
    return image.transform((out_w, out_h), Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC)


def inscribed_scale(width: int, height: int, degrees: float) -> float:
    """Largest scale of the frame that still fits inside it once rotated by ``degrees``."""
    angle = math.radians(abs(degrees))
    return 1 / (math.cos(angle) + math.sin(angle) * max(width / height, height / width))


def _affine(
    width: int, height: int, degrees: float, box: tuple[float, float, int, int], flip: Flip
) -> tuple[float, ...]:
    """Output pixel to source pixel: flip the output box, place it in the frame, rotate about its centre.

    The same convention as ``Image.rotate`` (counter-clockwise on screen).
    """
    left, top, out_w, out_h = box
    mirror_x = flip in (Flip.HORIZONTAL, Flip.BOTH)
    mirror_y = flip in (Flip.VERTICAL, Flip.BOTH)
    sign_x, sign_y = (-1 if mirror_x else 1), (-1 if mirror_y else 1)
    x0 = left + (out_w if mirror_x else 0) - width / 2
    y0 = top + (out_h if mirror_y else 0) - height / 2
    angle = -math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    return (
        cos * sign_x, sin * sign_y, cos * x0 + sin * y0 + width / 2,
        -sin * sign_x, cos * sign_y, -sin * x0 + cos * y0 + height / 2,
    )  # fmt: skip


_FLIPS = {
    Flip.HORIZONTAL: Image.Transpose.FLIP_LEFT_RIGHT,
    Flip.VERTICAL: Image.Transpose.FLIP_TOP_BOTTOM,
    Flip.BOTH: Image.Transpose.ROTATE_180,
}


def _flip(image: Image.Image, flip: Flip) -> Image.Image:
    return image.transpose(_FLIPS[flip]) if flip else image


# ITU-R 601-2 luma, as ImageEnhance.Color's greyscale.
_LUMA = (0.299, 0.587, 0.114)


def _colour(image: Image.Image, transforms: Transforms) -> Image.Image:
    """Saturation, brightness and contrast as ImageEnhance applies them, in one pass over the pixels.

    Each is affine in RGB: Color blends with the luma grey, Brightness with black, Contrast with the
    mean grey. Saturation leaves luma unchanged, so the mean Contrast blends towards is the picture's
    mean luma times the brightness factor.
    """
    if transforms.saturation is None and transforms.brightness is None and transforms.contrast is None:
        return image
    saturation = (100 if transforms.saturation is None else transforms.saturation) / 100
    brightness = (100 if transforms.brightness is None else transforms.brightness) / 100
    contrast = 1 + (transforms.contrast or 0) / 100
    mean = brightness * _mean_luma(image) if transforms.contrast else 0.0
    matrix: list[float] = []
    for row in range(3):
        for column in range(3):
            blend = (1 - saturation) * _LUMA[column] + (saturation if row == column else 0)
            matrix.append(contrast * brightness * blend)
        matrix.append(mean * (1 - contrast))
    return image.convert("RGB", tuple(matrix))


def _mean_luma(image: Image.Image) -> float:
    # An 8x box reduction keeps the mean and costs a fraction of a full pass.
    means = ImageStat.Stat(image.reduce(8)).mean
    return sum(weight * mean for weight, mean in zip(_LUMA, means, strict=True))


def _encode(image: Image.Image, quality: int, attempt: int, icc: bytes | None, exif: bytes) -> bytes:
    # The source's comment, XMP and DPI ride along in ``info``; none of them belongs in a copy.
    image.info = {}
    options: dict[str, Any] = {"icc_profile": icc, "exif": exif}
    if attempt:
        options["qtables"] = _retry_tables(quality, attempt)
    else:
        options["quality"] = quality
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def _retry_tables(quality: int, attempt: int) -> list[list[int]]:
    """libjpeg's tables for ``quality`` with entries unique to ``attempt`` (its base-255 digits)."""
    luma, chroma = (list(map(int, table)) for table in LIBJPEG_TABLES[quality - 1])
    remaining = attempt
    for position in _RETRY_POSITIONS:
        remaining, digit = divmod(remaining, 255)
        luma[position] = (luma[position] - 1 + digit) % 255 + 1
    if remaining:
        raise ValueError(f"retry {attempt} is beyond the {255 ** len(_RETRY_POSITIONS)} distinct tables")
    return [luma, chroma]


# --- EXIF ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lens:
    make: str
    model: str
    focal: tuple[float, float]
    # Widest aperture at the short and the long end; the narrowest it stops down to.
    aperture: tuple[float, float]
    smallest: float


@dataclass(frozen=True)
class Camera:
    make: str
    model: str
    software: str
    released: date
    iso: tuple[int, int]
    lenses: tuple[Lens, ...]


def _phone_lens(make: str, model: str, focal: float, aperture: float) -> Lens:
    return Lens(make, model, (focal, focal), (aperture, aperture), aperture)


# Real bodies with lenses sold for them, as their firmware writes Make, Model and LensModel.
CAMERAS = (
    Camera("Canon", "Canon EOS 5D Mark IV", "Firmware Version 1.2.0", date(2016, 9, 8), (100, 12800), (
        Lens("Canon", "EF24-105mm f/4L IS II USM", (24, 105), (4.0, 4.0), 22),
        Lens("Canon", "EF50mm f/1.8 STM", (50, 50), (1.8, 1.8), 22),
        Lens("Canon", "EF70-200mm f/2.8L IS III USM", (70, 200), (2.8, 2.8), 32),
    )),
    Camera("Canon", "Canon EOS 80D", "Firmware Version 1.0.2", date(2016, 3, 18), (100, 6400), (
        Lens("Canon", "EF-S18-135mm f/3.5-5.6 IS USM", (18, 135), (3.5, 5.6), 22),
        Lens("Canon", "EF-S24mm f/2.8 STM", (24, 24), (2.8, 2.8), 22),
    )),
    Camera("NIKON CORPORATION", "NIKON D750", "Ver.1.10", date(2014, 9, 23), (100, 12800), (
        Lens("Nikon", "AF-S NIKKOR 24-120mm f/4G ED VR", (24, 120), (4.0, 4.0), 22),
        Lens("Nikon", "AF-S NIKKOR 50mm f/1.8G", (50, 50), (1.8, 1.8), 16),
    )),
    Camera("NIKON CORPORATION", "NIKON Z 6", "Ver.03.00", date(2018, 11, 23), (100, 25600), (
        Lens("Nikon", "NIKKOR Z 24-70mm f/4 S", (24, 70), (4.0, 4.0), 22),
        Lens("Nikon", "NIKKOR Z 50mm f/1.8 S", (50, 50), (1.8, 1.8), 16),
    )),
    Camera("SONY", "ILCE-7M3", "ILCE-7M3 v3.01", date(2018, 4, 10), (100, 25600), (
        Lens("Sony", "FE 28-70mm F3.5-5.6 OSS", (28, 70), (3.5, 5.6), 22),
        Lens("Sony", "FE 85mm F1.8", (85, 85), (1.8, 1.8), 22),
    )),
    Camera("FUJIFILM", "X-T3", "Digital Camera X-T3 Ver3.00", date(2018, 9, 20), (160, 12800), (
        Lens("FUJIFILM", "XF18-55mmF2.8-4 R LM OIS", (18, 55), (2.8, 4.0), 22),
        Lens("FUJIFILM", "XF35mmF2 R WR", (35, 35), (2.0, 2.0), 16),
    )),
    Camera("OLYMPUS CORPORATION", "E-M10MarkIII", "Version 1.2", date(2017, 9, 21), (200, 6400), (
        Lens("OLYMPUS CORPORATION", "OLYMPUS M.14-42mm F3.5-5.6 EZ", (14, 42), (3.5, 5.6), 22),
    )),
    Camera("Panasonic", "DC-G9", "Ver.1.0", date(2018, 1, 25), (200, 6400), (
        Lens("Panasonic", "LUMIX G VARIO 12-60/F3.5-5.6", (12, 60), (3.5, 5.6), 22),
    )),
    Camera("Apple", "iPhone 12", "16.1.1", date(2020, 10, 23), (32, 2000), (
        _phone_lens("Apple", "iPhone 12 back dual wide camera 4.2mm f/1.6", 4.2, 1.6),
        _phone_lens("Apple", "iPhone 12 back dual wide camera 1.55mm f/2.4", 1.55, 2.4),
    )),
    Camera("Google", "Pixel 7", "HDR+ 1.0.540104767zd", date(2022, 10, 13), (50, 3200), (
        _phone_lens("Google", "Pixel 7 back camera 6.81mm f/1.85", 6.81, 1.85),
    )),
)  # fmt: skip
# Synthetic dates never come from the clock, so a seed always gives the same bytes.
LATEST_DATE = date(2025, 6, 30)
_EXPOSURES = tuple(Fraction(1, d) for d in (4000, 3200, 2500, 2000, 1600, 1250, 1000, 800, 640, 500, 400,
                                            320, 250, 200, 160, 125, 100, 80, 60, 50, 40, 30, 25, 20, 15))
_F_STOPS = (1.4, 1.6, 1.8, 2.0, 2.2, 2.5, 2.8, 3.2, 3.5, 4.0, 4.5, 5.0, 5.6, 6.3, 7.1, 8.0, 9.0, 10.0,
            11.0, 13.0, 14.0, 16.0, 18.0, 20.0, 22.0, 25.0, 29.0, 32.0)
_ISOS = (32, 40, 50, 64, 80, 100, 125, 160, 200, 250, 320, 400, 500, 640, 800, 1000, 1250, 1600, 2000,
         2500, 3200, 4000, 5000, 6400, 8000, 10000, 12800, 16000, 20000, 25600)
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
        Base.ExposureTime: _rational(rng.choice(_EXPOSURES)),
        Base.FNumber: _rational(rng.choice(_f_numbers(lens, focal))),
        Base.ISOSpeedRatings: rng.choice([iso for iso in _ISOS if camera.iso[0] <= iso <= camera.iso[1]]),
        Base.FocalLength: _rational(focal),
        Base.LensMake: lens.make,
        Base.LensModel: lens.model,
    }  # fmt: skip
    return _exif_block(ifd0, exif_ifd, {})


def _f_numbers(lens: Lens, focal: float) -> list[float]:
    (short, long), (at_short, at_long) = lens.focal, lens.aperture
    # A variable-aperture zoom closes down linearly enough over its range for a plausible pairing.
    zoomed = (focal - short) / (long - short) if long > short else 0.0
    widest = round(at_short + (at_long - at_short) * zoomed, 2)
    return [widest, *(stop for stop in _F_STOPS if widest < stop <= lens.smallest)]


def _random_moment(rng: random.Random, earliest: date) -> datetime:
    day = date.fromordinal(rng.randint(earliest.toordinal(), LATEST_DATE.toordinal()))
    # Daylight hours, when most photos are taken.
    return datetime(day.year, day.month, day.day, 7) + timedelta(seconds=rng.randrange(14 * 3600))


def similar_exif(source_exif: bytes, rng: random.Random) -> bytes:
    """The source's body, lens and settings one step apart, dates shifted, GPS moved a few metres.

    A source without Make and Model has nothing to be similar to and gets ``random_exif``. Tags the
    source lacks stay absent, so nothing contradicts what it had.
    """
    source = _load_exif(source_exif)
    exif_ifd = _sub_ifd(source, ExifTags.IFD.Exif)
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
        Base.ExposureTime: _step(exif_ifd.get(Base.ExposureTime), _EXPOSURES, rng, _rational),
        # Never wider than the source: its lens may open no further.
        Base.FNumber: _step(exif_ifd.get(Base.FNumber), _F_STOPS, rng, _rational, (0, 1)),
        Base.ISOSpeedRatings: _step(exif_ifd.get(Base.ISOSpeedRatings), _ISOS, rng, int),
        Base.FocalLength: _positive_rational(exif_ifd.get(Base.FocalLength)),
        Base.LensMake: _text(exif_ifd.get(Base.LensMake)),
        Base.LensModel: _text(exif_ifd.get(Base.LensModel)),
    })  # fmt: skip
    return _exif_block(ifd0, similar, _jittered_gps(_sub_ifd(source, ExifTags.IFD.GPSInfo), rng))


def _present(tags: dict[int, Any]) -> dict[int, Any]:
    return {tag: value for tag, value in tags.items() if value not in (None, False, "")}


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.replace("\x00", " ").strip()[:64] or None


def _positive_rational(value: Any) -> IFDRational | None:
    number = _positive(value)
    return None if number is None else _rational(number)


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
        moved[GPS.GPSAltitude] = _rational(altitude)
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
    source = _load_exif(_exif_bytes_of(_open(data)))
    ifd0 = {tag: source[tag] for tag in _DESCRIPTIVE_IFD0 if tag in source}
    exif_ifd = {tag: value for tag, value in _sub_ifd(source, ExifTags.IFD.Exif).items()
                if tag not in _UNPORTABLE_EXIF}
    gps = dict(_sub_ifd(source, ExifTags.IFD.GPSInfo))
    if not (ifd0 or exif_ifd or gps):
        raise InvalidParameter("the donor image has no EXIF data")
    try:
        block = _exif_block(ifd0, exif_ifd, gps)
    except Exception as exc:
        raise InvalidParameter(f"the donor's EXIF cannot be rewritten: {exc}") from exc
    if len(block) > _MAX_EXIF_BYTES:
        raise InvalidParameter(f"the donor's EXIF is {len(block)} bytes, more than a JPEG holds")
    return block


def _copy_exif(
    params: UniquifyParams, source_exif: bytes, donor: bytes | None, rng: random.Random, size: tuple[int, int]
) -> bytes:
    """The copy's EXIF block: upright (as ``_exif_block`` makes every block), with the copy's pixel size."""
    if params.exif is ExifMode.REMOVED:
        return b""
    if params.exif is ExifMode.RANDOM:
        block = random_exif(rng)
    elif params.exif is ExifMode.SIMILAR:
        block = similar_exif(source_exif, rng)
    else:
        block = donor or b""
    exif = _load_exif(block)
    ifd0 = {tag: value for tag, value in exif.items() if tag not in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)}
    width, height = size
    exif_ifd = {**_sub_ifd(exif, ExifTags.IFD.Exif), Base.ExifImageWidth: width, Base.ExifImageHeight: height}
    return _exif_block(ifd0, exif_ifd, _sub_ifd(exif, ExifTags.IFD.GPSInfo))


def _load_exif(block: bytes) -> Image.Exif:
    exif = Image.Exif()
    try:
        exif.load(block)
    except Exception:
        return Image.Exif()
    return exif


def _sub_ifd(exif: Image.Exif, ifd: int) -> Mapping[int, Any]:
    try:
        return exif.get_ifd(ifd)
    except Exception:
        return {}


def _exif_block(ifd0: Mapping[int, Any], exif_ifd: Mapping[int, Any], gps: Mapping[int, Any]) -> bytes:
    """A big-endian EXIF block: IFD0, then the Exif IFD and the GPS IFD it points to.

    Assembled IFD by IFD because ``Image.Exif.tobytes`` guesses the type of most Exif IFD tags, writing
    UNDEFINED ones as BYTE and non-negative signed rationals as unsigned, which no camera does.
    """
    main = {**_REQUIRED_IFD0, **ifd0, Base.Orientation: 1}
    subs = [(ExifTags.IFD.Exif, {**_REQUIRED_EXIF, **exif_ifd})]
    if gps:
        subs.append((ExifTags.IFD.GPSInfo, {GPS.GPSVersionID: b"\x02\x03\x00\x00", **gps}))
    # Pointers are LONGs whatever their value, so IFD0's length is known before the offsets are.
    main.update({pointer: 0 for pointer, _ in subs})
    offset = len(_TIFF_HEAD) + len(_ifd_bytes(main, None, len(_TIFF_HEAD)))
    blocks = []
    for pointer, tags in subs:
        main[pointer] = offset
        blocks.append(_ifd_bytes(tags, pointer, offset))
        offset += len(blocks[-1])
    return b"Exif\x00\x00" + _TIFF_HEAD + _ifd_bytes(main, None, len(_TIFF_HEAD)) + b"".join(blocks)


def _ifd_bytes(tags: Mapping[int, Any], group: int | None, offset: int) -> bytes:
    ifd = ImageFileDirectory_v2(ifh=_TIFF_HEAD, group=group)
    for tag, value in tags.items():
        if tag in _EXIF_TYPES:
            ifd.tagtype[tag] = _EXIF_TYPES[tag]
        ifd[tag] = value
    return ifd.tobytes(offset)


def _rational(value: float | Fraction) -> IFDRational:
    fraction = value if isinstance(value, Fraction) else Fraction(value).limit_denominator(10000)
    return IFDRational(fraction.numerator, fraction.denominator)
