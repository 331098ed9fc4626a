"""Uniquification's render: the same copies as the Pillow path it replaced (luminance SSIM), each transform's
measured effect against the plan, the pHash from the pixels in memory, and the decoded-source cache."""

from __future__ import annotations

import io
import math
import random

import numpy as np
import pytest
from PIL import Image, ImageOps, ImageStat
from scipy.ndimage import gaussian_filter

from media.phash import hamming, phash_image
from media.uniquify.copy import make_copy, pixels_phash
from media.uniquify.pixels import _LUMA, _affine, _colour, choose_transforms, inscribed_scale, render
from media.uniquify.plan import plan_copies
from media.uniquify.source import DecodedSources, decode_source
from schemas.errors import CorruptMedia
from schemas.uniquify import Flip
from test_uniquify_copies import GPS_SOURCE, JPEGS, PLAIN, copy_of, jpeg, pixels
from test_uniquify_params import params

PHOTOS = [GPS_SOURCE, JPEGS / "Canon_40D.jpg", JPEGS / "Nikon_D70.jpg"]
# The range docs/api.md's phash_distance takes with the default parameters (media/uniquify/copy.py).
DEFAULT_PHASH_RANGE = (0, 12)
_FLIPS = {
    Flip.HORIZONTAL: Image.Transpose.FLIP_LEFT_RIGHT,
    Flip.VERTICAL: Image.Transpose.FLIP_TOP_BOTTOM,
    Flip.BOTH: Image.Transpose.ROTATE_180,
}


def reference_render(upright: Image.Image, transforms) -> Image.Image:
    """The render path before libvips and OpenCV: Pillow's bicubic affine for rotation, crop and flip, then
    the colour matrix through Image.convert."""
    width, height = upright.size
    scale = inscribed_scale(width, height, transforms.rotate or 0.0)
    inner_w, inner_h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    cut = {side: round((inner_w if side in ("left", "right") else inner_h) * percent / 100)
           for side, percent in transforms.crop.items()}  # fmt: skip
    out_w = max(1, inner_w - cut.get("left", 0) - cut.get("right", 0))
    out_h = max(1, inner_h - cut.get("top", 0) - cut.get("bottom", 0))
    left = (width - inner_w) / 2 + cut.get("left", 0)
    top = (height - inner_h) / 2 + cut.get("top", 0)
    if transforms.rotate is None:
        image = upright.crop((int(left), int(top), int(left) + out_w, int(top) + out_h))
        image = image.transpose(_FLIPS[transforms.flip]) if transforms.flip else image
    else:
        matrix = _affine(width, height, transforms.rotate, (left, top, out_w, out_h), transforms.flip)
        image = upright.transform((out_w, out_h), Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC)
    return pillow_colour(image, transforms)


def pillow_colour(image: Image.Image, transforms) -> Image.Image:
    """The colour matrix as Pillow applied it, its mean luma from an 8x box reduction."""
    if transforms.saturation is None and transforms.brightness is None and transforms.contrast is None:
        return image
    saturation = (100 if transforms.saturation is None else transforms.saturation) / 100
    brightness = (100 if transforms.brightness is None else transforms.brightness) / 100
    contrast = 1 + (transforms.contrast or 0) / 100
    means = ImageStat.Stat(image.reduce(8)).mean
    mean = brightness * sum(w * m for w, m in zip(_LUMA, means, strict=True)) if transforms.contrast else 0.0
    matrix = []
    for row in range(3):
        matrix += [contrast * brightness * ((1 - saturation) * _LUMA[column] + (saturation if row == column else 0))
                   for column in range(3)]  # fmt: skip
        matrix.append(mean * (1 - contrast))
    return image.convert("RGB", tuple(matrix))


def luminance_ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM of the luma planes (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03)."""
    x, y = (np.asarray(image.convert("L"), dtype=np.float64) for image in (a, b))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(values: np.ndarray) -> np.ndarray:
        return gaussian_filter(values, 1.5, truncate=3.5)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean())


def upright_rgb(data: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


QUERIES = [
    {},
    {"rotate": '{"min": -45, "max": 45}', "crop": '{"enable": true, "side": 3, "min": 1, "max": 20}'},
    {"rotate": '{"min": 5, "max": 30}', "flip": "3", "saturation": '{"min": 0, "max": 300}'},
    {"rotate": '{"min": 0.5, "max": 2}', "flip": "1", "crop": '{"enable": true, "side": 1}', "contrast": '{"max": 60}'},
    {"rotate": "null", "flip": "2", "crop": '{"enable": true, "side": 2, "min": 5, "max": 10}'},
]


@pytest.mark.parametrize("query", QUERIES)
def test_render_matches_the_pillow_path(query):
    job = params(copies="3", **query)
    for path in PHOTOS:
        data = path.read_bytes()
        decoded, upright = decode_source(data), upright_rgb(data)
        for task in plan_copies(job, ["a"], 5):
            transforms = choose_transforms(job, random.Random(task.seed))
            ours, reference = render(decoded.pixels, transforms), reference_render(upright, transforms)
            assert ours.size == reference.size
            assert luminance_ssim(ours, reference) >= 0.98, (path.name, transforms)


def test_ssim_fails_a_blurring_or_shifted_render():
    data = GPS_SOURCE.read_bytes()
    transforms = choose_transforms(params(rotate='{"min": 3, "max": 3}'), random.Random(1))
    reference = reference_render(upright_rgb(data), transforms)
    blurred = reference.resize((reference.width // 2, reference.height // 2)).resize(reference.size)
    shifted = reference.transform(reference.size, Image.Transform.AFFINE, (1, 0, 0.7, 0, 1, 0.7),
                                  Image.Resampling.BICUBIC)  # fmt: skip
    assert luminance_ssim(blurred, reference) < 0.98 and luminance_ssim(shifted, reference) < 0.98


def test_same_copy_from_bytes_and_from_the_decoded_source():
    data = GPS_SOURCE.read_bytes()
    job = params(copies="2", exif="2", crop='{"enable": true, "side": 3}')
    decoded = decode_source(data)
    for task in plan_copies(job, ["a"], 9):
        assert make_copy(data, task, job, None).data == make_copy(decoded, task, job, None).data


def test_rotation_angle_is_the_planned_one():
    # A black horizontal bar through the middle: in the copy its slope is the rotation's.
    image = Image.new("RGB", (600, 400), "white")
    image.paste("black", (0, 196, 600, 204))
    for degrees in (-20.0, 1.5, 7.25):
        result = copy_of(jpeg(image, quality=95), {**PLAIN, "rotate": f'{{"min": {degrees}, "max": {degrees}}}'})
        darkness = 255 - pixels(result.data).mean(axis=2)
        columns = np.arange(40, result.width - 40)
        rows = np.arange(result.height)[:, None]
        centre = (darkness[:, columns] * rows).sum(axis=0) / darkness[:, columns].sum(axis=0)
        slope = np.polyfit(columns, centre, 1)[0]
        # Counter-clockwise on screen: the bar rises (smaller rows) to the right.
        assert math.degrees(math.atan(-slope)) == pytest.approx(degrees, abs=0.05)


def test_crop_box_is_the_planned_one():
    # A texture with features of a few pixels, which a JPEG keeps and a box one pixel off does not match.
    noise = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    source = jpeg(Image.fromarray(noise).resize((160, 120), Image.Resampling.BICUBIC), quality=100)
    # Luma: re-subsampling the chroma of a box at an odd offset changes colours at edges, not positions.
    decoded = np.asarray(Image.open(io.BytesIO(source)).convert("L"), dtype=float)
    result = copy_of(source, {**PLAIN, "quality": "100", "crop": '{"enable": true, "side": 2, "min": 5, "max": 20}'}, 4)
    cut = result.transforms["crop"]
    left, top = round(160 * cut["left"] / 100), round(120 * cut["top"] / 100)
    copy = np.asarray(Image.open(io.BytesIO(result.data)).convert("L"), dtype=float)
    box = decoded[top : top + result.height, left : left + result.width]
    assert np.abs(copy - box).mean() < 3
    assert np.abs(copy - decoded[top + 1 : top + 1 + result.height, left : left + result.width]).mean() > 10
    assert np.abs(copy - decoded[top : top + result.height, left + 1 : left + 1 + result.width]).mean() > 10


def test_colour_shifts_are_the_planned_ones():
    rng = np.random.default_rng(5)
    source_pixels = rng.integers(70, 180, (64, 64, 3)).astype(np.uint8)
    for transforms in (choose_transforms(params(rotate="null"), random.Random(seed)) for seed in range(5)):
        out = np.asarray(_colour(source_pixels, transforms), dtype=float)
        rgb = source_pixels.astype(float)
        grey = rgb @ (0.299, 0.587, 0.114)
        expected = grey[..., None] + transforms.saturation / 100 * (rgb - grey[..., None])
        expected *= transforms.brightness / 100
        mean = (expected @ (0.299, 0.587, 0.114)).mean()
        expected = mean + (1 + transforms.contrast / 100) * (expected - mean)
        assert np.abs(out - expected).max() < 2.5, transforms


def test_phash_distance_with_the_default_parameters():
    job = params(copies="8")
    for path in PHOTOS:
        data = path.read_bytes()
        decoded = decode_source(data)
        for task in plan_copies(job, ["a"], 17):
            result = make_copy(decoded, task, job, None)
            assert DEFAULT_PHASH_RANGE[0] <= result.phash_distance <= DEFAULT_PHASH_RANGE[1], path.name
            # From the pixels in memory, as the hash of the encoded copy would be.
            assert abs(result.phash_distance - hamming(phash_image(data).hash, phash_image(result.data).hash)) <= 2


def test_pixels_phash_is_the_jpeg_phash():
    for path in PHOTOS:
        upright = upright_rgb(path.read_bytes())
        assert hamming(pixels_phash(upright), phash_image(jpeg(upright, quality=95)).hash) <= 2


def test_decoded_sources_kept_within_their_budget():
    sources = {name: jpeg(Image.new("RGB", (100, 50), colour), quality=90) for name, colour in
               (("red", "red"), ("green", "green"), ("blue", "blue"), ("big", "white"))}  # fmt: skip
    sources["big"] = jpeg(Image.new("RGB", (200, 100), "white"), quality=90)
    loads = []

    def load(key: str) -> bytes:
        loads.append(key)
        return sources[key]

    cache = DecodedSources(max_bytes=2 * 100 * 50 * 3)
    for key in ("red", "green", "red", "blue", "red", "green"):
        assert cache.get(key, load).pixels.width == 100
    # blue pushed out green, the least recently used; red stayed.
    assert loads == ["red", "green", "blue", "green"]
    assert cache.nbytes <= cache.max_bytes
    assert cache.get("big", load).pixels.width == 200 and cache.get("big", load) is not None
    assert loads[-2:] == ["big", "big"] and set(cache.kept) == {"red", "green"}


def test_a_source_that_cannot_be_decoded_is_not_kept():
    cache = DecodedSources(max_bytes=10**8)
    broken = GPS_SOURCE.read_bytes()[:20000]
    with pytest.raises(CorruptMedia, match="cannot be decoded"):
        cache.get("broken", lambda key: broken)
    assert not cache.kept
