"""pHash speed on >= 8 MP JPEGs against stock imagehash, and agreement with it on every sample image.

    python -m bench.phash [--rounds N]

Hashing is pinned to one core. The large JPEGs are the real >= 8 MP samples plus camera samples
upscaled to 12 MP with film grain (written to a temporary directory, never kept), so that they
compress like camera photos (about 0.2-0.3 bytes per pixel).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageOps


from media.phash import hamming, phash_image
from schemas.errors import MedialaneError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
JPEGS = SAMPLES / "exif-samples" / "jpg"
SYNTHESIS_SOURCES = ["Canon_40D.jpg", "Nikon_D70.jpg", "gps/DSCN0012.jpg", "Pentax_K10D.jpg", "Kodak_CX7530.jpg"]
SYNTHESIS_SIZE = (4000, 3000)
GRAIN_SIGMA = 3.0
MIN_PIXELS = 8_000_000


def synthesise(directory: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for name in SYNTHESIS_SOURCES:
        with Image.open(JPEGS / name) as source:
            upscaled = ImageOps.exif_transpose(source).convert("RGB").resize(SYNTHESIS_SIZE, Image.Resampling.BICUBIC)
        # Upscaling alone leaves flat areas that compress far better than a sensor's noise does.
        pixels = np.asarray(upscaled, dtype=np.float32)
        pixels += rng.normal(0, GRAIN_SIGMA, pixels.shape[:2] + (1,)).astype(np.float32)
        path = directory / f"synthetic-{Path(name).stem}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def pixel_count(path: Path) -> int:
    with Image.open(path) as image:
        return image.width * image.height


def real_large_jpegs() -> list[Path]:
    return [path for path in sorted(JPEGS.rglob("*.jp*g")) if pixel_count(path) >= MIN_PIXELS]


def stock(path: Path) -> None:
    imagehash.phash(Image.open(path))


def ours(path: Path) -> None:
    phash_image(path.read_bytes())


def per_second(hasher, paths: list[Path], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for path in paths:
            hasher(path)
    return rounds * len(paths) / (time.perf_counter() - started)


def report_speed(label: str, paths: list[Path], rounds: int) -> None:
    megapixels = [pixel_count(path) / 1e6 for path in paths]
    bytes_per_pixel = [path.stat().st_size / (mp * 1e6) for path, mp in zip(paths, megapixels)]
    print(f"{label}: {len(paths)} JPEGs, {min(megapixels):.1f}-{max(megapixels):.1f} MP, "
          f"{min(bytes_per_pixel):.2f}-{max(bytes_per_pixel):.2f} bytes/pixel")
    ours_rate = per_second(ours, paths, rounds)
    stock_rate = per_second(stock, paths, rounds)
    print(f"  medialane phash_image (hash + mirrored hash + sha256): {ours_rate:6.1f} images/s")
    print(f"  stock imagehash.phash(Image.open(f)):                   {stock_rate:6.1f} images/s")
    print(f"  speed-up: {ours_rate / stock_rate:.2f}x")


def report_agreement() -> None:
    displayed_distances = []
    stored_distances = []
    for path in sorted(p for p in SAMPLES.rglob("*") if p.is_file()):
        try:
            result = phash_image(path.read_bytes())
        except MedialaneError:
            continue
        with Image.open(path) as image:
            stored_distances.append(hamming(result.hash, str(imagehash.phash(image))))
            displayed_distances.append(hamming(result.hash, str(imagehash.phash(ImageOps.exif_transpose(image)))))
    for label, distances in [
        ("stock imagehash.phash(exif_transpose(Image.open(f)))", displayed_distances),
        ("stock imagehash.phash(Image.open(f)), orientation ignored", stored_distances),
    ]:
        identical = sum(distance == 0 for distance in distances)
        print(f"agreement with {label}: {identical}/{len(distances)} identical "
              f"({100 * identical / len(distances):.1f}%), largest distance {max(distances)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    report_agreement()
    with tempfile.TemporaryDirectory() as directory:
        report_speed("synthetic 12 MP camera-like", synthesise(Path(directory)), args.rounds)
    report_speed("real >= 8 MP samples", real_large_jpegs(), args.rounds)


if __name__ == "__main__":
    main()
