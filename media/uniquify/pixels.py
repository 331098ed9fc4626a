"""A copy's pixels: the random transforms it is given, applied, and the JPEG they are encoded to.

Rotation, crop and flip are resampled in one bicubic affine pass that computes only the output's pixels
(a rotated copy is cut to the largest rectangle of the same aspect ratio inside the rotated picture, so
it has no filled corners and comes out slightly smaller), then saturation, brightness and contrast as
one colour matrix (the ImageEnhance formulas composed, clipped once at the end).

Each step runs on the engine that measured fastest for it (docs/benchmarks.md): OpenCV for the geometry
(its bicubic affine takes 0.4 of libvips' time and 0.2 of Pillow's) and the colour matrix (a tenth of
Pillow's), Pillow for the JPEG, whose quantisation tables only Pillow lets us write.

A retry, asked for when a copy's md5 is already taken, changes nothing but a few high-frequency entries
of the luminance quantisation table, written in the file; every attempt number gets different entries,
so each retry yields new bytes and the loop ends.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from media.metadata import LIBJPEG_TABLES
from schemas.uniquify import Crop, CropSide, Flip, Range, UniquifyParams

_SIDES = ("left", "top", "right", "bottom")
# Natural-order positions of the luminance table a retry rewrites: the highest frequencies, whose
# quantisation is invisible.
_RETRY_POSITIONS = (63, 62, 55)
# ITU-R 601-2 luma, as ImageEnhance.Color's greyscale.
_LUMA = (0.299, 0.587, 0.114)

# One OpenCV thread a worker process: workers scale as processes, and a pool in each would contend for
# the same cores.
cv2.setNumThreads(1)
_FLIP_CODES = {Flip.HORIZONTAL: 1, Flip.VERTICAL: 0, Flip.BOTH: -1}


# Not compared by value: an array's == is elementwise.
@dataclass(frozen=True, eq=False)
class Pixels:
    """Upright RGB pixels, rows x columns x 3 bytes, shared by every copy of a source: read-only."""

    array: np.ndarray

    @classmethod
    def of(cls, image: Image.Image) -> Pixels:
        """``image`` must be RGB."""
        array = np.asarray(image)
        array.flags.writeable = False
        return cls(array)

    @property
    def width(self) -> int:
        return self.array.shape[1]

    @property
    def height(self) -> int:
        return self.array.shape[0]

    @property
    def nbytes(self) -> int:
        return self.array.nbytes


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


def render(pixels: Pixels, transforms: Transforms) -> Image.Image:
    """``pixels`` with ``transforms``: geometry first, then colour."""
    return _colour(_geometry(pixels, transforms), transforms)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels, transparent areas composited on white."""
    if image.mode == "RGB":
        return image
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")


def _geometry(pixels: Pixels, transforms: Transforms) -> np.ndarray:
    width, height = pixels.width, pixels.height
    scale = inscribed_scale(width, height, transforms.rotate or 0.0)
    inner_w, inner_h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    cut = {side: round((inner_w if side in ("left", "right") else inner_h) * percent / 100)
           for side, percent in transforms.crop.items()}
    out_w = max(1, inner_w - cut.get("left", 0) - cut.get("right", 0))
    out_h = max(1, inner_h - cut.get("top", 0) - cut.get("bottom", 0))
    left = (width - inner_w) / 2 + cut.get("left", 0)
    top = (height - inner_h) / 2 + cut.get("top", 0)
    if transforms.rotate is None:
        box = pixels.array[int(top) : int(top) + out_h, int(left) : int(left) + out_w]
        code = _FLIP_CODES.get(transforms.flip)
        return np.ascontiguousarray(box) if code is None else cv2.flip(box, code)
    # Rotation, crop and flip in one resampling pass: a separate rotate would resample every pixel of the
    # full frame and then throw the corners away.
    matrix = _affine(width, height, transforms.rotate, (left, top, out_w, out_h), transforms.flip)
    return _warp(pixels.array, matrix, (out_w, out_h))


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


def _warp(source: np.ndarray, matrix: tuple[float, ...], size: tuple[int, int]) -> np.ndarray:
    """``matrix`` (output to input, Pillow's AFFINE) as OpenCV's inverse map, at the same sampling points.

    Pillow samples output pixel ``o`` at ``A(o + 0.5) + b`` in edge coordinates, that is at
    ``A o + A(0.5, 0.5) + b - 0.5`` in the pixel-centre ones OpenCV uses.
    """
    a, b, c, d, e, f = matrix
    inverse = np.array([[a, b, c + (a + b) / 2 - 0.5], [d, e, f + (d + e) / 2 - 0.5]])
    return cv2.warpAffine(
        source, inverse, size, flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        # Taps beyond the frame's edge repeat it instead of blending black into the border pixels.
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def _colour(pixels: np.ndarray, transforms: Transforms) -> Image.Image:
    """Saturation, brightness and contrast as ImageEnhance applies them, in one pass over the pixels.

    Each is affine in RGB: Color blends with the luma grey, Brightness with black, Contrast with the
    mean grey. Saturation leaves luma unchanged, so the mean Contrast blends towards is the picture's
    mean luma times the brightness factor.
    """
    if transforms.saturation is None and transforms.brightness is None and transforms.contrast is None:
        return Image.fromarray(pixels)
    saturation = (100 if transforms.saturation is None else transforms.saturation) / 100
    brightness = (100 if transforms.brightness is None else transforms.brightness) / 100
    contrast = 1 + (transforms.contrast or 0) / 100
    mean = brightness * _mean_luma(pixels) if transforms.contrast else 0.0
    matrix: list[float] = []
    for row in range(3):
        for column in range(3):
            blend = (1 - saturation) * _LUMA[column] + (saturation if row == column else 0)
            matrix.append(contrast * brightness * blend)
        matrix.append(mean * (1 - contrast))
    # Rounded and clipped to 8 bits once, as Image.convert's matrix does.
    return Image.fromarray(cv2.transform(pixels, np.reshape(matrix, (3, 4))))


def _mean_luma(pixels: np.ndarray) -> float:
    # cv2.mean gives four channels, the fourth 0 for RGB.
    return sum(weight * mean for weight, mean in zip(_LUMA, cv2.mean(pixels)[:3], strict=True))


def encode(image: Image.Image, quality: int, attempt: int, icc: bytes | None, exif: bytes) -> bytes:
    """The JPEG of ``image``; retry ``attempt`` (0 for the first) picks its quantisation tables."""
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
