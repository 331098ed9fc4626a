"""End to end (issue 16): the embedded pipeline against its stage, its targets, and as it ages. One command, one run.

On the default settings and the one API key the stack creates, with ~200 KB camera JPEGs synthesised from
``../shared/samples`` (none of them weighs 200 KB), each part on an embedded stack of its own (free ports,
its own data directory):

1. stage-only: ``extract_metadata`` with a kept-open ExifTool over the same files, in as many processes as workers;
2. closed loop at ``--concurrency``: jobs/s and the ratio to (1); 4. CPU per job of each process kind and
   5. produce requests (broker batch objects) and object-store requests per job, over that loop;
3. open loop at ``--rate`` jobs/s for ``--seconds``: p50/p99 from accept to terminal;
6. the closed loop with 1 worker;
7. a history of user-like jobs through the API, the workers restarted at each of ``--histories``;
8. the closed loop again on that history, broker bytes per job, and the store over ``--idle`` idle seconds.

    python -m bench.pipeline [--jobs 1000] [--concurrency 32] [--rate 50] [--seconds 30]
                             [--histories 1000,10000] [--idle 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import re
import tempfile
import time
from pathlib import Path

from bench.pipeline_costs import (
    PIPELINE_KINDS, broker_objects, cpu_by_kind, diff, s3_requests, stage_only, store_calls,
)  # fmt: skip
from bench.pipeline_load import camera_jpegs, closed_loop, open_loop, session_for, warm_up
from bench.pipeline_load import make_jpegs, percentile, run_jobs  # noqa: F401 - bench/broker_idle.py, bench/searchable.py
from bench.pipeline_restart import broker_per_job, grown, idle, make_history
from compose.embedded import BROKER_BUCKET_SUFFIX, EmbeddedPipeline
from schemas.settings import Settings
from tests.isolated_stack import isolated_settings

SETTLE = 3.0
# SeaweedFS's filer flushes its change journal every minute; its volumes have no collection (no bucket).
JOURNAL_FLUSH_SECONDS = 65.0
JOURNAL = re.compile(r"seaweedfs/\d+\.(dat|idx)$")


@contextlib.contextmanager
def stack(workers: int, **overrides):
    """A fresh embedded pipeline on the default settings (but ``overrides``), SeaweedFS's metrics exposed."""
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as data_dir:
        settings = isolated_settings(Settings(**overrides), Path(data_dir), workers)
        metrics_port = int(settings.s3_endpoint.rsplit(":", 1)[1]) + 4
        pipeline = EmbeddedPipeline(settings)
        pipeline.stack.object_store.argv.append(f"-metricsPort={metrics_port}")
        started = time.perf_counter()
        pipeline.start()
        try:
            key, _ = pipeline.first_key()
            print(f"[{workers} worker(s)] stack ready in {time.perf_counter() - started:.1f} s", flush=True)
            yield pipeline, key, metrics_port
        finally:
            pipeline.stop()


async def measured_loop(pipeline: EmbeddedPipeline, key: str, files: list[bytes], jobs: int, concurrency: int,
                        metrics_port: int) -> dict:  # fmt: skip
    """The closed loop, with the CPU, S3 requests, store calls and broker objects around it."""
    broker = f"{pipeline.settings.s3_bucket}{BROKER_BUCKET_SUFFIX}"
    async with session_for(pipeline.url, key) as session:
        await warm_up(session, files)
        await asyncio.sleep(SETTLE)
        listing0 = broker_objects(pipeline.settings, pipeline.stack.retention.deleted)
        cpu0, s3_0, calls0 = cpu_by_kind(pipeline), s3_requests(metrics_port, broker), store_calls(pipeline)
        outcome = await closed_loop(session, [files[i % len(files)] for i in range(jobs)], concurrency)
        await asyncio.sleep(SETTLE)  # status changelog writes and commits of the last jobs
        cpu1, s3_1, calls1 = cpu_by_kind(pipeline), s3_requests(metrics_port, broker), store_calls(pipeline)
    listing1 = broker_objects(pipeline.settings, pipeline.stack.retention.deleted)
    done = max(outcome.done, 1)
    return {
        "outcome": outcome, "cpu": {k: v / done for k, v in diff(cpu1, cpu0).items()},
        "s3": {k: v / done for k, v in diff(s3_1, s3_0).items()},
        "calls": {k: v / done for k, v in diff(calls1, calls0).items()},
        "broker": broker_per_job(listing0, listing1, done),
    }  # fmt: skip


async def fresh(pipeline, key, files, args, metrics_port) -> tuple[dict, dict]:
    loop = await measured_loop(pipeline, key, files, args.jobs, args.concurrency, metrics_port)
    print(f"  closed loop: {loop['outcome'].rate():.1f} jobs/s, {loop['outcome'].summary()}", flush=True)
    async with session_for(pipeline.url, key) as session:
        await asyncio.sleep(SETTLE)
        cpu0 = cpu_by_kind(pipeline)
        outcome = await open_loop(session, files, args.rate, args.seconds)
        cpu1 = cpu_by_kind(pipeline)
    print(f"  open loop: {outcome.done} done, server {outcome.summary()}, client {outcome.summary('client')}")
    return loop, {"outcome": outcome, "cpu": {k: v / max(outcome.done, 1) for k, v in diff(cpu1, cpu0).items()}}


async def aged(pipeline, key, files, args, metrics_port) -> dict:
    broker = f"{pipeline.settings.s3_bucket}{BROKER_BUCKET_SUFFIX}"
    async with session_for(pipeline.url, key) as session:
        chunks, restarts = await make_history(pipeline, session, files, args.histories, args.concurrency)
    made = args.histories[-1]
    listing = broker_objects(pipeline.settings, pipeline.stack.retention.deleted)
    loop = await measured_loop(pipeline, key, files, args.jobs, args.concurrency, metrics_port)
    print(f"  closed loop on {made} jobs of history: {loop['outcome'].rate():.1f} jobs/s", flush=True)
    # SeaweedFS writes its change journal (the filer's metadata log) once a minute: the idle minutes start after
    # the loop's last minute of it is written, so that it counts as the loop's, not as idle growth.
    await asyncio.sleep(JOURNAL_FLUSH_SECONDS)
    quiet = await idle(pipeline, args.idle, metrics_port, broker)
    return {"chunks": chunks, "restarts": restarts, "loop": loop, "idle": quiet,
            "broker_per_job": (listing[2] / made, listing[1] / made, sum(listing[0].values()) / made)}  # fmt: skip


def sec(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report(args, stage: tuple, one: dict, loop: dict, openl: dict, old: dict, wall: float) -> None:
    out, rate = loop["outcome"], loop["outcome"].rate()
    o1, oo = one["outcome"], openl["outcome"]
    cpu = sum(loop["cpu"].get(k, 0) for k in PIPELINE_KINDS)
    restarts = old["restarts"]
    first, last = restarts[0], restarts[-1]
    aged_rate = old["loop"]["outcome"].rate()
    kb_per_job = loop["broker"][2] / 1024
    old_broker_kb = old["broker_per_job"][0] / 1024
    growth = old["idle"].after["seaweedfs disk bytes"] - old["idle"].before["seaweedfs disk bytes"]
    journal = sum(size for name, size in grown(old["idle"].before, old["idle"].after, None) if JOURNAL.match(name))
    cores = os.cpu_count()
    print(f"\n## Figures ({cores} cores shared with the other engineers' runs; load average before: {args.load})\n")
    print("| # | figure | measured | target | ratio to target |\n|---|---|---:|---:|---:|")
    rows = [
        ("1", f"stage-only, extract_metadata in {args.workers} processes", f"{stage[0]:.1f} files/s", "", ""),
        ("2", f"end to end, closed loop at {args.concurrency}, {out.done} jobs",
         f"{rate:.1f} jobs/s ({rate / stage[0]:.0%} of 1)", "≥ 100 jobs/s", f"{rate / 100:.2f}×"),
        ("2", "  its latency (accept → terminal)", out.summary(), "", ""),
        ("3", f"open loop {args.rate:g} jobs/s × {args.seconds:g} s ({oo.done} done, {len(oo.failures)} not)",
         f"p50 {percentile(oo.server, 50) * 1000:.0f} ms / p99 {percentile(oo.server, 99) * 1000:.0f} ms",
         "p99 ≤ 250 ms", f"{percentile(oo.server, 99) / 0.25:.2f}×"),
        ("3", "  same, client's clock (due → answer)", oo.summary("client"), "", ""),
        ("4", "CPU per job, pipeline's processes (2)", ms(cpu), "≤ 15 ms", f"{cpu / 0.015:.2f}×"),
        ("6", f"end to end, 1 worker / {args.workers}", f"{o1.rate():.1f} / {rate:.1f} jobs/s",
         "", f"{rate / max(o1.rate(), 1e-9):.2f}× (2 / 1)"),
        ("7", f"restart at {first.history:,} jobs: readyz / lookups / new job",
         f"{sec(first.readyz_s)} / {sec(first.lookups_s)} / {sec(first.new_job_s)} s", "", ""),
        ("7", f"restart at {last.history:,} jobs: readyz / lookups / new job",
         f"{sec(last.readyz_s)} / {sec(last.lookups_s)} / {sec(last.new_job_s)} s", f"≤ 1.5 × {first.history:,}",
         f"{(last.lookups_s or 0) / max(first.lookups_s or 1e-9, 1e-9) / 1.5:.2f}× "
         f"({(last.lookups_s or 0) / max(first.lookups_s or 1e-9, 1e-9):.2f}× the {first.history:,})"),
        ("8", f"closed loop on {last.history:,} jobs of history", f"{aged_rate:.1f} jobs/s",
         "≥ 90% of fresh", f"{aged_rate / rate:.0%} of fresh"),
        ("8", "broker storage per metadata job (closed loop 2)", f"{kb_per_job:.2f} KiB", "≤ 5 KB",
         f"{kb_per_job * 1024 / 5000:.2f}×"),
        ("8", f"broker storage per job over the {last.history:,}-job history", f"{old_broker_kb:.2f} KiB", "", ""),
        ("8", f"store growth over {old['idle'].seconds:.0f} s idle (SeaweedFS on disk)", f"{growth / 1024:+.0f} KiB",
         "0", "met" if growth <= 0 else "missed"),
        ("8", "  of which SeaweedFS's own volumes (its change journal)", f"{journal / 1024:+.0f} KiB", "", ""),
    ]  # fmt: skip
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nstage-only rounds: {', '.join(f'{r:.1f}' for r in stage[1])} files/s; wall time of the run {wall / 60:.1f} min")
    print("\nCPU per job by process kind (ms): | kind | closed loop (2) | open loop (3) | 1 worker (6) | on history (8) |")
    for kind in (*PIPELINE_KINDS, "load generator"):
        print(f"| {kind} | " + " | ".join(f"{d['cpu'].get(kind, 0) * 1000:.2f}"
                                       for d in (loop, openl, one, old["loop"])) + " |")  # fmt: skip
    for name, d in (("fresh (2)", loop), ("on history (8)", old["loop"])):
        batches, objects, size, batch_bytes = d["broker"]
        print(f"\n{name}: broker batch objects (one a produce request and partition) per job by topic: "
              f"{ {t: round(n, 3) for t, n in sorted(batches.items())} } total {sum(batches.values()):.2f}; "
              f"broker objects {objects:+.2f}/job, {size / 1024:+.2f} KiB/job; batch bytes/job by topic "
              f"{ {t: round(n) for t, n in sorted(batch_bytes.items())} }")  # fmt: skip
        print(f"  S3 requests per job (SeaweedFS): { {k: round(v, 2) for k, v in sorted(d['s3'].items())} } "
              f"total {sum(d['s3'].values()):.1f}")  # fmt: skip
        print(f"  pipeline's own store calls per job: { {k: round(v, 2) for k, v in sorted(d['calls'].items())} }")
    print("\nhistory chunks (first job, jobs, jobs/s, not finished):")
    for start, count, chunk_rate, failures in old["chunks"]:
        print(f"  {start:>6} +{count}: {chunk_rate:.1f} jobs/s, {len(failures)} not finished {failures[:3]}")
    for r in restarts:
        print(f"restart at {r.history}: stop {r.stop_s:.1f} s, readyz {sec(r.readyz_s)} s, lookups "
              f"{sec(r.lookups_s)} s, new job {sec(r.new_job_s)} s, readyz 200 while a lookup failed: {r.readyz_early} polls; "
              f"changelog records read: {r.changelog_reads}")  # fmt: skip
    quiet = old["idle"]
    before, after = ({k: v for k, v in state.items() if k != "files"} for state in (quiet.before, quiet.after))
    print(f"\nidle {quiet.seconds:.0f} s: store before {before}\n  after {after}\n  grown most: {grown(quiet.before, quiet.after)}\n"
          f"  S3 requests {quiet.s3}\n  CPU, % of one core: {({k: round(100 * v / quiet.seconds, 1) for k, v in quiet.cpu.items()})}")
    per_job = sum(c[1] for c in old["chunks"]) / sum(c[1] / c[2] for c in old["chunks"] if c[2])
    print(f"history made at {per_job:.1f} jobs/s overall; 50,000 jobs would take about "
          f"{(50_000 - last.history) / per_job / 60:.0f} more minutes of filling")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs of each closed loop")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=50.0, help="open loop: jobs offered a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="open loop: how long")
    parser.add_argument("--histories", default="1000,10000", help="history sizes the workers are restarted at")
    parser.add_argument("--idle", type=float, default=300.0, help="idle seconds the store is watched")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.histories = sorted(int(n) for n in args.histories.split(","))
    args.load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if stray := sorted(k for k in os.environ if k.startswith("MEDIALANE_")):
        print(f"warning: {stray} set in the environment: the run is not on the defaults")
    started = time.perf_counter()
    files = camera_jpegs()
    print(f"{len(files)} camera JPEGs, mean {sum(map(len, files)) / len(files) / 1024:.0f} KiB; "
          f"{os.cpu_count()} cores, load average {args.load}", flush=True)  # fmt: skip
    stage = stage_only(files, args.workers)
    print(f"[1] stage-only: {stage[0]:.1f} files/s ({args.workers} processes)", flush=True)
    with stack(1) as (pipeline, key, port):
        one = asyncio.run(measured_loop(pipeline, key, files, args.jobs, args.concurrency, port))
        print(f"[6] 1 worker: {one['outcome'].rate():.1f} jobs/s", flush=True)
    with stack(args.workers) as (pipeline, key, port):
        loop, openl = asyncio.run(fresh(pipeline, key, files, args, port))
    # Webhook jobs deliver to a receiver in this process: the URL guard must let 127.0.0.1 through.
    with stack(args.workers, fetch_allow_hosts=("127.0.0.1",)) as (pipeline, key, port):
        old = asyncio.run(aged(pipeline, key, files, args, port))
    wall = time.perf_counter() - started
    # Kept, so that the report can be printed again from the figures (pickle.load, then report(*...)).
    with open(Path(tempfile.gettempdir()) / "bench-pipeline-figures.pickle", "wb") as out:
        pickle.dump((args, stage, one, loop, openl, old, wall), out)
    report(args, stage, one, loop, openl, old, wall)


if __name__ == "__main__":
    main()
