"""Uniquification copies/s: ``make_copy`` against a plain single-process Pillow loop doing the same work.

    python -m bench.uniquify_loop [--copies N] [--rounds N]

The plain loop is the baseline the pipeline benchmark compares against: the textbook Pillow calls for
the same transforms (exif_transpose, rotate then crop away the corners, crop the sides, the three
ImageEnhance steps, transpose, save at the source's quality with its ICC profile), with the same random
values. ``make_copy`` also hashes source and copy for the manifest's pHash distance, which the plain
loop does not. Both run pinned to one core on the 12 MP camera-like JPEGs of bench/phash.py,
synthesised from the samples into a temporary directory; each figure is the best of the rounds.
"""

import argparse
import io
import os
import random
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps


from bench.phash import synthesise
from media.metadata import jpeg_quality
from schemas.uniquify import Flip, UniquifyParams
from media.uniquify.copy import make_copy
from media.uniquify.params import parse_params
from media.uniquify.pixels import Transforms, choose_transforms, inscribed_scale
from media.uniquify.plan import plan_copies

# The reference's defaults, with its crop example switched on so that every transform runs.
QUERY = {"crop": '{"enable": true, "side": 1, "min": 1, "max": 5}', "flip": "1"}
SEED = 2024
_TRANSPOSES = {
    Flip.HORIZONTAL: Image.Transpose.FLIP_LEFT_RIGHT,
    Flip.VERTICAL: Image.Transpose.FLIP_TOP_BOTTOM,
    Flip.BOTH: Image.Transpose.ROTATE_180,
}


def plain_loop(sources: list[bytes], params: UniquifyParams, copies: int) -> tuple[int, float]:
    """(copies made, seconds) for ``copies`` copies of every source, one after the other."""
    tasks = plan_copies(params.model_copy(update={"copies": copies}), ["x"] * len(sources), SEED)
    seeds = [task.seed for task in tasks]
    started = time.perf_counter()
    for index, seed in enumerate(seeds):
        plain_copy(sources[index // copies], choose_transforms(params, random.Random(seed)), params)
    return len(seeds), time.perf_counter() - started


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


def copy_loop(sources: list[bytes], params: UniquifyParams, copies: int) -> tuple[int, float]:
    tasks = plan_copies(params.model_copy(update={"copies": copies}), ["x"] * len(sources), SEED)
    started = time.perf_counter()
    for task in tasks:
        make_copy(sources[task.source_index], task, params, None)
    return len(tasks), time.perf_counter() - started


def best_rate(loop, sources: list[bytes], params: UniquifyParams, copies: int, rounds: int) -> float:
    return max(count / seconds for count, seconds in (loop(sources, params, copies) for _ in range(rounds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    params = parse_params(QUERY, max_copies=args.copies)
    with tempfile.TemporaryDirectory() as directory:
        sources = [path.read_bytes() for path in synthesise(Path(directory))]
    with Image.open(io.BytesIO(sources[0])) as first:
        megapixels = first.width * first.height / 1e6
    print(f"{len(sources)} sources of {megapixels:.1f} MP, {args.copies} copies each, "
          f"best of {args.rounds} rounds")
    ours = best_rate(copy_loop, sources, params, args.copies, args.rounds)
    plain = best_rate(plain_loop, sources, params, args.copies, args.rounds)
    print(f"  make_copy loop:    {ours:5.2f} copies/s")
    print(f"  plain Pillow loop: {plain:5.2f} copies/s")
    print(f"  make_copy / plain: {ours / plain:.2f}x")


if __name__ == "__main__":
    main()
