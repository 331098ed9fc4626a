"""What an idle embedded stack writes to the broker's bucket, and what the broker stores per job.

Starts its own embedded pipeline on free ports (two workers), runs some metadata jobs through the API,
lets the stack settle, then for ``--idle`` seconds counts the object store's write requests (SeaweedFS's
Prometheus counters) and the broker bucket's objects and bytes (listed with the minio SDK) before and after.
SeaweedFS's own files are measured too: all of them, and its change journal (docs/operations.md) per job and
per idle minute. It writes the journal once a minute, so the stack settles a minute after the jobs.

    python -m bench.broker_idle [--jobs 200] [--idle 60]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from bench.pipeline import JOURNAL_FLUSH_SECONDS, make_jpegs, run_jobs
from bench.pipeline_costs import disk_files
from compose.embedded import BROKER_BUCKET_SUFFIX, EmbeddedPipeline
from adapters.objects import ObjectStore
from schemas.settings import Settings
from tests.isolated_stack import isolated_settings

WRITE_ACTIONS = ("PUT", "POST", "DELETE")
# Tansu's objects by kind: batch objects under each partition, group and offset files, the rest.
KINDS = (("batch", re.compile(r"/records/.*\.batch$")), ("group", re.compile(r"groups/")),
         ("offsets", re.compile(r"offset|watermark")))  # fmt: skip


def bucket_usage(settings: Settings) -> tuple[int, int, Counter]:
    store = ObjectStore(settings)
    objects = list(store.client.list_objects(f"{settings.s3_bucket}{BROKER_BUCKET_SUFFIX}", recursive=True))
    kinds = Counter(next((kind for kind, pattern in KINDS if pattern.search(o.object_name)), "other") for o in objects)
    shapes = Counter(re.sub(r"\d+", "N", o.object_name) for o in objects)
    print("key shapes:", dict(shapes.most_common(12)))
    return len(objects), sum(o.size for o in objects), kinds


def write_requests(metrics_port: int) -> int:
    """S3 write requests SeaweedFS has served, from its Prometheus counters."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("SeaweedFS_s3_request_total{") and any(f'type="{a}' in line for a in WRITE_ACTIONS):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def seaweedfs_files(settings: Settings) -> tuple[int, int]:
    """Bytes on disk of SeaweedFS's files, and of its volumes outside the buckets (its change journal)."""
    files = disk_files(settings.data_dir / "seaweedfs")
    return sum(files.values()), sum(size for name, size in files.items() if re.fullmatch(r"\d+\.(dat|idx)", name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        base = Settings(rate_limit_per_second=10_000, rate_limit_burst=10_000, max_active_jobs=10_000)
        settings = isolated_settings(base, Path(data_dir), 2)
        metrics_port = int(settings.s3_endpoint.rsplit(":", 1)[1]) + 4
        pipeline = EmbeddedPipeline(settings)
        pipeline.stack.object_store.argv.append(f"-metricsPort={metrics_port}")
        pipeline.start()
        try:
            settings = pipeline.settings
            empty = bucket_usage(settings)
            time.sleep(JOURNAL_FLUSH_SECONDS)
            files_empty = seaweedfs_files(settings)
            key, _ = pipeline.first_key()
            asyncio.run(run_jobs(pipeline.url, key, make_jpegs(args.jobs), 16))
            time.sleep(JOURNAL_FLUSH_SECONDS)
            objects0, bytes0, kinds0 = bucket_usage(settings)
            writes0, files0 = write_requests(metrics_port), seaweedfs_files(settings)
            time.sleep(args.idle)
            writes1, files1 = write_requests(metrics_port), seaweedfs_files(settings)
            objects1, bytes1, kinds1 = bucket_usage(settings)
        finally:
            pipeline.stop()
    jobs = args.jobs + 1  # with the warm-up job
    print(f"after {jobs} jobs: {objects0} objects, {bytes0 / 1024:.0f} KiB in the broker bucket "
          f"({(bytes0 - empty[1]) / jobs / 1024:.1f} KiB and {(objects0 - empty[0]) / jobs:.1f} objects per job); "
          f"by kind {dict(kinds0)}")  # fmt: skip
    print(f"idle {args.idle:.0f} s: {writes1 - writes0} S3 write requests ({(writes1 - writes0) / args.idle:.2f}/s), "
          f"broker bucket {objects1 - objects0:+d} objects, {(bytes1 - bytes0) / 1024:+.1f} KiB; by kind {dict(kinds1)}")  # fmt: skip
    print(f"SeaweedFS's journal: {(files0[1] - files_empty[1]) / jobs / 1024:.2f} KiB per job, "
          f"{(files1[1] - files0[1]) / 1024 / (args.idle / 60):+.1f} KiB per idle minute; all its files "
          f"{(files1[0] - files0[0]) / 1024:+.0f} KiB while idle")  # fmt: skip


if __name__ == "__main__":
    main()
