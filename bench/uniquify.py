"""Uniquification through the pipeline: a job of 24 copies of one source with one worker and with two, zip
included, against the floor (Pillow decode + encode of that source on one core), in the same run.

    python -m bench.uniquify [--copies 24]

Sources are the 12 MP and 24 MP camera-like JPEGs of bench/uniquify_loop.py. A figure runs from POST
/v1/uniquify to the job's completion, after one warm-up job; CPU is that of every process of the
pipeline (workers, ingest, object store, broker) over the job, and each worker's share of it, which shows
whether the job's copies were spread over the workers. Then the round trips of one copy against the same
object store: the source's read, the copy's write, and its share of the zip.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import aiohttp

from adapters.objects import ObjectStore
from bench.uniquify_loop import QUERY, SEED, SIZES, cpu_seconds, floor, synthesise
from compose.embedded import EmbeddedPipeline
from media.uniquify import write_zip
from schemas.settings import Settings
from tests.isolated_stack import isolated_settings

TICKS = os.sysconf("SC_CLK_TCK")


async def run_job(url: str, key: str, source: bytes, copies: int) -> float:
    form = aiohttp.FormData()
    form.add_field("images", source, filename="source.jpg", content_type="image/jpeg")
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
    if job["status"] != "completed" or job["result"]["uniquify"]["copies"] != copies:
        raise RuntimeError(f"job did not complete: {job}")
    return elapsed


def pipeline_cpu(pipeline: EmbeddedPipeline) -> tuple[float, list[float]]:
    """CPU seconds so far of every process of the pipeline, and of each worker's: each child leads its own
    session."""
    children = [*pipeline.children, pipeline.stack.object_store, pipeline.stack.broker]
    ticks = dict.fromkeys((child.process.pid for child in children), 0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in ticks:
            ticks[int(fields[3])] += int(fields[11]) + int(fields[12])
    return sum(ticks.values()) / TICKS, [ticks[worker.process.pid] / TICKS for worker in pipeline.workers]


def round_trips(store: ObjectStore, source: bytes, copy: bytes, copies: int) -> dict[str, float]:
    """Wall milliseconds of one copy's object-store round trips and its share of the zip."""
    store.put_bytes("tmp/bench/source", source)
    for index in range(copies):
        store.put_bytes(f"tmp/bench/{index}", copy)

    def timed(work) -> float:
        started = time.perf_counter()
        work()
        return 1000 * (time.perf_counter() - started)

    def zip_job() -> None:
        with tempfile.NamedTemporaryFile() as spool:
            write_zip(((f"{i}.jpg", store.get_bytes(f"tmp/bench/{i}")) for i in range(copies)), spool)
            spool.flush()
            store.put_file("tmp/bench/zip", spool.name, "application/zip")

    return {
        "read the source (once per worker)": min(timed(lambda: store.get_bytes("tmp/bench/source")) for _ in range(3)),
        "write the copy": min(timed(lambda: store.put_bytes("tmp/bench/c", copy)) for _ in range(3)),
        "zip: read the copy back, write it to the zip, upload, per copy": timed(zip_job) / copies,
    }


def measure(workers: int, sources: dict[str, bytes], copies: int) -> tuple[dict[str, tuple[float, float, str]], dict]:
    with tempfile.TemporaryDirectory() as data_dir:
        # Polling every 50 ms must not meet the per-key rate limit.
        settings = Settings(rate_limit_per_second=10_000, rate_limit_burst=10_000)
        pipeline = EmbeddedPipeline(isolated_settings(settings, Path(data_dir), workers))
        pipeline.start()
        try:
            key, _ = pipeline.first_key()
            asyncio.run(run_job(pipeline.url, key, next(iter(sources.values())), 2))
            figures = {}
            for label, source in sources.items():
                cpu, per_worker = pipeline_cpu(pipeline)
                seconds = asyncio.run(run_job(pipeline.url, key, source, copies))
                cpu_after, per_worker_after = pipeline_cpu(pipeline)
                split = " / ".join(
                    f"{after - before:.1f}" for before, after in zip(per_worker, per_worker_after, strict=True))
                figures[label] = (seconds, cpu_after - cpu, split)
            trips = {}
            if workers == 1:
                store = ObjectStore(pipeline.settings)
                for label, source in sources.items():
                    # A copy is about 0.9 of its source's size: its cut corners and sides.
                    trips[label] = round_trips(store, source, source[: len(source) * 9 // 10], copies)
            return figures, trips
        finally:
            pipeline.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=24)
    args = parser.parse_args()
    sources = {label: synthesise(size, 1)[0] for label, size in SIZES.items()}
    os.sched_setaffinity(0, {0})
    floors = {label: 1000 * cpu_seconds(lambda: floor([source]), 3) for label, source in sources.items()}
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    one, trips = measure(1, sources, args.copies)
    two, _ = measure(2, sources, args.copies)
    print(f"one source x {args.copies} copies a job\n")
    print("| source | floor | workers | copies/s | wall per copy | CPU per copy, all processes | CPU / floor "
          "| 2 workers / 1 | CPU s of each worker |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label in sources:
        for workers, figures in ((1, one), (2, two)):
            seconds, cpu, split = figures[label]
            per_copy = 1000 * cpu / args.copies
            speedup = f"**{one[label][0] / seconds:.2f}x**" if workers == 2 else ""
            print(f"| {label} | {floors[label]:.0f} ms | {workers} | {args.copies / seconds:.2f} "
                  f"| {1000 * seconds / args.copies:.0f} ms | {per_copy:.0f} ms | **{per_copy / floors[label]:.2f}x** "
                  f"| {speedup} | {split} |")
    for label, steps in trips.items():
        print(f"\nround trips of a copy, {label}\n\n| step | ms |\n|---|---:|")
        for name, ms in steps.items():
            print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()
