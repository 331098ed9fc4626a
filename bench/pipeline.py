"""End to end: N jobs (about 200 KB JPEGs) posted over HTTP to the embedded pipeline.

Starts its own embedded pipeline on free ports (two workers by default), posts every job with
``?wait=60`` from a bounded number of concurrent clients, and reports jobs/s and the p50/p99 time
from POST to ``completed``. These figures are the baseline later changes are held to.

    python -m bench.pipeline [--jobs 500] [--concurrency 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from PIL import Image

from compose.embedded import EmbeddedPipeline
from schemas.settings import Settings
from tests.isolated_stack import isolated_settings

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif-samples" / "jpg"
TARGET_BYTES = 200 * 1024


def make_jpegs(count: int) -> list[bytes]:
    """Real camera JPEGs scaled up until they weigh about 200 KB, EXIF kept."""
    sources = sorted(p for p in SAMPLES.glob("*.jpg") if p.name != "corrupted.jpg")
    images = []
    for path in sources:
        with Image.open(path) as im:
            exif = im.info.get("exif", b"")
            scale, data = 1.0, b""
            while len(data) < TARGET_BYTES and scale < 40:
                out = io.BytesIO()
                im.convert("RGB").resize((int(im.width * scale), int(im.height * scale))).save(
                    out, "JPEG", quality=90, exif=exif
                )
                data, scale = out.getvalue(), scale * 1.25
        images.append(data)
    return [images[i % len(images)] for i in range(count)]


async def post_job(session: aiohttp.ClientSession, data: bytes, index: int) -> float:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=f"bench-{index}.jpg", content_type="image/jpeg")
    started = time.perf_counter()
    async with session.post("/v1/jobs", data=form, params={"wait": "60"}) as response:
        body = await response.json()
    if response.status != 200 or body.get("status") != "completed":
        raise RuntimeError(f"job {index} did not complete: {response.status} {body}")
    return time.perf_counter() - started


async def run_jobs(url: str, key: str, jobs: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, data: bytes) -> float:
        async with gate:
            return await post_job(session, data, index)

    async with aiohttp.ClientSession(base_url=url, headers={"X-API-Key": key}) as session:
        await post_job(session, jobs[0], -1)  # warm-up: first exiftool and decoder start in each worker
        started = time.perf_counter()
        latencies = await asyncio.gather(*(one(i, data) for i, data in enumerate(jobs)))
        return time.perf_counter() - started, list(latencies)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = make_jpegs(args.jobs)
    with tempfile.TemporaryDirectory() as data_dir:
        # Throughput is the measure: the per-key limits (docs/api.md#authentication) must not be.
        unlimited = Settings(rate_limit_per_second=10_000, rate_limit_burst=10_000, max_active_jobs=10_000)
        settings = isolated_settings(unlimited, Path(data_dir), args.workers)
        pipeline = EmbeddedPipeline(settings)
        pipeline.start()
        try:
            key, _ = pipeline.first_key()
            elapsed, latencies = asyncio.run(run_jobs(pipeline.url, key, jobs, args.concurrency))
        finally:
            pipeline.stop()
    mean_kb = sum(map(len, jobs)) / len(jobs) / 1024
    print("| jobs | mean size | workers | concurrency | jobs/s | p50 | p99 |\n|---|---|---|---|---|---|---|")
    print(
        f"| {len(jobs)} | {mean_kb:.0f} KB | {args.workers} | {args.concurrency} | {len(jobs) / elapsed:.1f} "
        f"| {percentile(latencies, 50) * 1000:.0f} ms | {percentile(latencies, 99) * 1000:.0f} ms |"
    )


if __name__ == "__main__":
    main()
