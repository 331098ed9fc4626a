"""Uniquification on one core: the floor (Pillow decode + encode), the textbook Pillow loop, the project's
copy, and what each step of a copy costs.

    python -m bench.uniquify_loop [--copies N] [--rounds N]

The plain loop is the old baseline: the textbook Pillow calls for the same transforms (exif_transpose,
rotate then crop away the corners, crop the sides, the three ImageEnhance steps, transpose, save at the
source's quality with its ICC profile), with the same random values. The project's copy is ``make_copy``
as a worker runs it: each source decoded once for its copies (that decode counted), the manifest's pHash
included. Everything runs pinned to one core, in one process, on 12 MP and 24 MP camera-like JPEGs
synthesised from the samples; each figure is the best of the rounds, in CPU time.
"""

import argparse
import io
import os
import random
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bench.phash import GRAIN_SIGMA, JPEGS, SYNTHESIS_SOURCES
from media.metadata import jpeg_quality
from media.uniquify.copy import make_copy, pixels_phash
from media.uniquify.exif import copy_exif
from media.uniquify.params import parse_params
from media.uniquify.pixels import Transforms, _colour, _geometry, choose_transforms, encode, inscribed_scale
from media.uniquify.plan import plan_copies
from media.uniquify.source import decode_source
from schemas.uniquify import Flip, UniquifyParams

SIZES = {"12 MP": (4000, 3000), "24 MP": (6000, 4000)}
SOURCE_QUALITY = 90

# The reference's defaults, with its crop example switched on so that every transform runs.
QUERY = {"crop": '{"enable": true, "side": 1, "min": 1, "max": 5}', "flip": "1"}
SEED = 2024
_TRANSPOSES = {
    Flip.HORIZONTAL: Image.Transpose.FLIP_LEFT_RIGHT,
    Flip.VERTICAL: Image.Transpose.FLIP_TOP_BOTTOM,
    Flip.BOTH: Image.Transpose.ROTATE_180,
}


def synthesise(size: tuple[int, int], count: int) -> list[bytes]:
    """``count`` camera-like JPEGs of ``size`` at quality 90: samples upscaled, with sensor-like grain (an
    upscale alone compresses far better than a photo), their EXIF kept."""
    rng = np.random.default_rng(0)
    sources = []
    for name in SYNTHESIS_SOURCES[:count]:
        with Image.open(JPEGS / name) as sample:
            exif = sample.info.get("exif", b"")
            upscaled = ImageOps.exif_transpose(sample).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        pixels = np.asarray(upscaled, dtype=np.float32)
        pixels += rng.normal(0, GRAIN_SIGMA, pixels.shape[:2] + (1,)).astype(np.float32)
        out = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=SOURCE_QUALITY, exif=exif)
        sources.append(out.getvalue())
    return sources


def cpu_seconds(work: Callable[[], object], rounds: int) -> float:
    """The least process CPU time of ``rounds`` runs of ``work``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def floor(sources: list[bytes]) -> None:
    """Pillow's decode and encode of each source at its quality: what no copy can go below."""
    for source in sources:
        with Image.open(io.BytesIO(source)) as image:
            image.load()
            image.save(io.BytesIO(), "JPEG", quality=jpeg_quality(image.quantization))


def plain_loop(sources: list[bytes], params: UniquifyParams, copies: int) -> int:
    """``copies`` copies of every source, one after the other; returns how many."""
    tasks = plan_copies(params.model_copy(update={"copies": copies}), ["x"] * len(sources), SEED)
    for task in tasks:
        plain_copy(sources[task.source_index], choose_transforms(params, random.Random(task.seed)), params)
    return len(tasks)


def plain_copy(source: bytes, transforms: Transforms, params: UniquifyParams) -> bytes:
    image = Image.open(io.BytesIO(source))
    quality = params.quality or jpeg_quality(image.quantization)
    icc = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image).convert("RGB")
    if transforms.rotate is not None:
        width, height = image.size
        scale = inscribed_scale(width, height, transforms.rotate)
        inner_w, inner_h = int(width * scale), int(height * scale)
        left, top = (width - inner_w) // 2, (height - inner_h) // 2
        image = image.rotate(transforms.rotate, Image.Resampling.BICUBIC)
        image = image.crop((left, top, left + inner_w, top + inner_h))
    image = image.crop(side_box(image.size, transforms.crop))
    for enhancer, percent in (
        (ImageEnhance.Color, transforms.saturation),
        (ImageEnhance.Brightness, transforms.brightness),
        (ImageEnhance.Contrast, None if transforms.contrast is None else 100 + transforms.contrast),
    ):
        if percent is not None:
            image = enhancer(image).enhance(percent / 100)
    if transforms.flip:
        image = image.transpose(_TRANSPOSES[transforms.flip])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, icc_profile=icc)
    return out.getvalue()


def side_box(size: tuple[int, int], crop: dict[str, float]) -> tuple[int, int, int, int]:
    width, height = size
    return (
        round(width * crop.get("left", 0) / 100),
        round(height * crop.get("top", 0) / 100),
        width - round(width * crop.get("right", 0) / 100),
        height - round(height * crop.get("bottom", 0) / 100),
    )


def copy_loop(sources: list[bytes], params: UniquifyParams, copies: int) -> list[int]:
    """``copies`` copies of every source as a worker makes them, each source decoded once; their pHash
    distances."""
    decoded = [decode_source(source) for source in sources]
    tasks = plan_copies(params.model_copy(update={"copies": copies}), ["x"] * len(sources), SEED)
    return [make_copy(decoded[task.source_index], task, params, None).phash_distance for task in tasks]


def steps(source: bytes, params: UniquifyParams, rounds: int) -> dict[str, float]:
    """Milliseconds of CPU of each step of the first copy of ``source``."""
    task = plan_copies(params, ["x"], SEED)[0]
    transforms = choose_transforms(params, random.Random(task.seed))
    decoded = decode_source(source)
    geometry = _geometry(decoded.pixels, transforms)
    image = _colour(geometry, transforms)
    exif_params = params.model_copy(update={"exif": 1})
    exif = copy_exif(exif_params, decoded.exif, None, random.Random(task.seed), image.size)
    timed = {
        "decode once per source (Pillow), orientation, RGB, source pHash": lambda: decode_source(source),
        "geometry: rotate + crop + flip, one bicubic affine (OpenCV)": lambda: _geometry(decoded.pixels, transforms),
        "colour: saturation, brightness, contrast, one matrix (OpenCV)": lambda: _colour(geometry, transforms),
        "EXIF synthesis (exif=1, a random camera)": lambda: copy_exif(
            exif_params, decoded.exif, None, random.Random(task.seed), image.size),
        "encode at the source's quality, ICC + EXIF (Pillow)": lambda: encode(image, decoded.quality, 0, decoded.icc, exif),
        "each distinctness retry: encode with own tables (Pillow)": lambda: encode(
            image, decoded.quality, 1, decoded.icc, exif),
        "copy's pHash from its pixels, reduced": lambda: pixels_phash(image),
        "whole copy, source already decoded (make_copy)": lambda: make_copy(decoded, task, params, None),
    }  # fmt: skip
    return {name: 1000 * cpu_seconds(work, rounds) for name, work in timed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    params = parse_params(QUERY, max_copies=args.copies)
    print(f"one core; {args.sources} sources x {args.copies} copies; best of {args.rounds} rounds, CPU time\n")
    print("| source | floor: decode + encode | textbook Pillow loop | project's copy | copy / floor "
          "| copies/s | textbook / copy | pHash distance |\n|---|---:|---:|---:|---:|---:|---:|---|")
    for label, size in SIZES.items():
        sources = synthesise(size, args.sources)
        total = args.copies * len(sources)
        floor_ms = 1000 * cpu_seconds(lambda: floor(sources), args.rounds) / len(sources)
        plain_ms = 1000 * cpu_seconds(lambda: plain_loop(sources, params, args.copies), args.rounds) / total
        distances: list[int] = []
        copy_ms = 1000 * cpu_seconds(lambda: distances.extend(copy_loop(sources, params, args.copies)), args.rounds) / total
        print(f"| {label} | {floor_ms:.0f} ms | {plain_ms:.0f} ms | {copy_ms:.0f} ms | **{copy_ms / floor_ms:.2f}x** "
              f"| {1000 / copy_ms:.2f} | {plain_ms / copy_ms:.2f}x "
              f"| {min(distances)}-{max(distances)} (median {statistics.median(distances):g}) |")
    for label, size in SIZES.items():
        print(f"\nsteps of a copy, {label}\n\n| step | ms |\n|---|---:|")
        for name, ms in steps(synthesise(size, 1)[0], params, args.rounds).items():
            print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()
