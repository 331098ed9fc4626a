"""Ingest-to-searchable: how long after a `phash` job completes its image is found by /v1/similar.

    python -m bench.searchable [--jobs 100]

Starts the embedded pipeline (two workers), posts each image with ``?wait`` and, from the moment the
completed job is returned, polls ``/v1/similar`` for its hash every 5 ms until the job is listed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.pipeline import make_jpegs, percentile
from compose.embedded import EmbeddedPipeline
from schemas.settings import Settings
from tests.isolated_stack import isolated_settings


async def searchable_after(session: aiohttp.ClientSession, data: bytes, index: int) -> float:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=f"bench-{index}.jpg", content_type="image/jpeg")
    form.add_field("ops", '["phash"]')
    async with session.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        job = await response.json()
    completed = time.perf_counter()
    params = {"phash": job["result"]["phash"]["phash"], "max_distance": "0", "limit": "1000"}
    while True:
        async with session.get("/v1/similar", params=params) as response:
            if job["job_id"] in {r["job_id"] for r in (await response.json())["results"]}:
                return time.perf_counter() - completed
        await asyncio.sleep(0.005)


async def measure(url: str, key: str, images: list[bytes]) -> list[float]:
    async with aiohttp.ClientSession(base_url=url, headers={"X-API-Key": key}) as session:
        return [await searchable_after(session, data, i) for i, data in enumerate(images)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    images = make_jpegs(args.jobs)
    with tempfile.TemporaryDirectory() as data_dir:
        # Polling every 5 ms is far over the default per-key rate limit.
        settings = Settings(rate_limit_per_second=10_000, rate_limit_burst=10_000)
        pipeline = EmbeddedPipeline(isolated_settings(settings, Path(data_dir), 2))
        pipeline.start()
        try:
            latencies = asyncio.run(measure(pipeline.url, pipeline.first_key()[0], images))
        finally:
            pipeline.stop()
    print("| jobs | p50 | p99 | max |\n|---|---|---|---|")
    print(f"| {len(latencies)} | {statistics.median(latencies) * 1000:.0f} ms | "
          f"{percentile(latencies, 99) * 1000:.0f} ms | {max(latencies) * 1000:.0f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
