"""Uniquification through the pipeline: copies/s with one worker and with two, against the plain
single-process Pillow loop (bench/uniquify_loop.py) applying the same transforms, in the same run.

    python -m bench.uniquify [--copies 10] [--sources 3]

Sources are ≥ 8 MP camera-like JPEGs synthesised from the samples (bench/phash.py). A pipeline figure
runs from POST /v1/uniquify to the job's completion, zip included, after one warm-up job.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.phash import synthesise
from bench.uniquify_loop import QUERY, SEED, plain_loop
from compose.embedded import EmbeddedPipeline
from media.uniquify.params import parse_params
from schemas.settings import Settings
from tests.isolated_stack import isolated_settings


async def run_job(url: str, key: str, sources: list[bytes], copies: int) -> float:
    form = aiohttp.FormData()
    for index, data in enumerate(sources):
        form.add_field("images", data, filename=f"source-{index}.jpg", content_type="image/jpeg")
    params = {**QUERY, "copies": str(copies), "seed": str(SEED)}
    async with aiohttp.ClientSession(base_url=url, headers={"X-API-Key": key}) as session:
        started = time.perf_counter()
        async with session.post("/v1/uniquify", data=form, params=params) as response:
            job_id = (await response.json())["job_id"]
        while True:
            async with session.get(f"/v1/jobs/{job_id}") as response:
                job = await response.json()
            # 503: the workers are still settling their partitions (docs/api.md); ask again.
            if response.status != 503 and job["status"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    if job["status"] != "completed" or job["result"]["uniquify"]["copies"] != copies * len(sources):
        raise RuntimeError(f"job did not complete: {job}")
    return elapsed


def pipeline_seconds(workers: int, sources: list[bytes], copies: int) -> float:
    with tempfile.TemporaryDirectory() as data_dir:
        # Polling every 50 ms must not meet the per-key rate limit.
        settings = Settings(rate_limit_per_second=10_000, rate_limit_burst=10_000)
        pipeline = EmbeddedPipeline(isolated_settings(settings, Path(data_dir), workers))
        pipeline.start()
        try:
            key, _ = pipeline.first_key()
            asyncio.run(run_job(pipeline.url, key, sources[:1], 1))
            return asyncio.run(run_job(pipeline.url, key, sources, copies))
        finally:
            pipeline.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--sources", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        sources = [path.read_bytes() for path in synthesise(Path(directory))[: args.sources]]
    total = args.copies * len(sources)
    made, plain = plain_loop(sources, parse_params(QUERY, 100), args.copies)
    one = pipeline_seconds(1, sources, args.copies)
    two = pipeline_seconds(2, sources, args.copies)
    rates = {"plain Pillow loop, one process": made / plain, "pipeline, 1 worker": total / one,
             "pipeline, 2 workers": total / two}  # fmt: skip
    print(f"{len(sources)} sources × {args.copies} copies (12 MP)\n")
    print("| run | copies/s |\n|---|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.2f} |")
    print(f"| 1 worker / plain loop | {rates['pipeline, 1 worker'] / rates['plain Pillow loop, one process']:.2f}x |")
    print(f"| 2 workers / 1 worker | {rates['pipeline, 2 workers'] / rates['pipeline, 1 worker']:.2f}x |")


if __name__ == "__main__":
    main()
