"""One setting against another: closed loops (2 of ``bench.pipeline``) on a fresh embedded stack with some
settings overridden, each with its CPU a job by process, its object-store requests and its broker batches.

    .venv/bin/python -m bench.pipeline_settings '{"topic_partitions": 4}' --rounds 2

How docs/benchmarks.md compares one setting with another (issue 16) before ``bench.pipeline`` runs the
chosen defaults; run it with nothing else on the machine, and compare rounds of the same run: two runs of
the same settings differ by about 0.4 ms a job.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.pipeline import measured_loop, stack
from bench.pipeline_costs import PIPELINE_KINDS
from bench.pipeline_load import camera_jpegs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="?", default="{}", help="settings as JSON, e.g. '{\"kafka_linger_ms\": 15}'")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    files = camera_jpegs()
    with stack(args.workers, **json.loads(args.overrides)) as (pipeline, key, port):
        for n in range(args.rounds):
            loop = asyncio.run(measured_loop(pipeline, key, files, args.jobs, 32, port))
            cpu = {kind: ms * 1000 for kind, ms in loop["cpu"].items()}
            total = sum(ms for kind, ms in cpu.items() if kind in PIPELINE_KINDS)
            print(f"round {n + 1}: {loop['outcome'].rate():.1f} jobs/s, CPU {total:.2f} ms a job ("
                  + ", ".join(f"{kind} {ms:.2f}" for kind, ms in sorted(cpu.items())) + ")")
            print("  object-store requests a job:", {kind: round(count, 2) for kind, count in sorted(loop["s3"].items())})
            print("  broker batches a job:", {topic: round(count, 3) for topic, count in sorted(loop["broker"][0].items())})
        print(f"partitions: {pipeline.settings.topic_partitions}", flush=True)


if __name__ == "__main__":
    main()
