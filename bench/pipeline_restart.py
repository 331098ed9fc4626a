"""The end-to-end benchmark's ageing part: a history made through the API, the workers restarted on it, and
what an idle stack holding it writes.

A restart stops every worker (SIGTERM, together) while SeaweedFS, Tansu and ingest keep running, starts them
again, and times from that start: ``/readyz`` answering 200, lookups (``GET /v1/jobs/{id}`` through ingest)
of jobs spread over the whole history all answering their finished job, and a job submitted at the start
finishing. It also notes whether ``/readyz`` ever said 200 while one of those lookups failed.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.pipeline_costs import broker_objects, bucket_bytes, cpu_by_kind, diff, disk_files, s3_requests
from bench.pipeline_load import Outcome, Receiver, history, job_form
from compose.embedded import EmbeddedPipeline

LOOKUPS = 40
RESTART_TIMEOUT = 300.0
POLL = 0.2
# True: every worker SIGTERMed at once; False: one after the other, last first, as `medialane up` stops them.
# Both sometimes leave the consumer group without a leader for minutes after the start (docs/benchmarks.md, issue 16).
TOGETHER = False
RECOVERED = re.compile(r"table (\S+) recovered: (\d+) changelog records read since start")


@dataclass
class Restart:
    history: int
    stop_s: float = 0.0
    readyz_s: float | None = None
    lookups_s: float | None = None
    new_job_s: float | None = None
    readyz_early: int = 0
    new_job_refused: str | None = None  # the job posted at the start was not taken: its answer
    changelog_reads: dict[str, int] = field(default_factory=dict)


async def _status(session: aiohttp.ClientSession, path: str) -> tuple[int, dict]:
    try:
        async with session.get(path, timeout=aiohttp.ClientTimeout(total=5)) as response:
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return 0, {}


async def _finished(session: aiohttp.ClientSession, job_id: str) -> bool:
    status, body = await _status(session, f"/v1/jobs/{job_id}")
    return status == 200 and body.get("status") in ("completed", "partial", "failed")


def _log_sizes(pipeline: EmbeddedPipeline) -> list[int]:
    return [w.log_path.stat().st_size if w.log_path.exists() else 0 for w in pipeline.workers]


def _changelog_reads(pipeline: EmbeddedPipeline, offsets: list[int]) -> dict[str, int]:
    """Changelog records each worker says it read since this start, by table (its last report of each)."""
    reads: dict[str, int] = {}
    for index, (worker, offset) in enumerate(zip(pipeline.workers, offsets)):
        with worker.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        last = {table: int(n) for table, n in RECOVERED.findall(text)}
        for table, n in last.items():
            reads[f"worker-{index} {table}"] = n
    return reads


async def restart_workers(pipeline: EmbeddedPipeline, session: aiohttp.ClientSession, ids: list[str],
                          made: int, data: bytes) -> Restart:  # fmt: skip
    result = Restart(made)
    sample = random.Random(made).sample(ids, min(LOOKUPS, len(ids)))
    started = time.perf_counter()
    if TOGETHER:
        with ThreadPoolExecutor(len(pipeline.workers)) as pool:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: list(pool.map(lambda w: w.stop(), pipeline.workers))
            )
    else:
        # One after the other, last first, as `medialane up` stops them (EmbeddedPipeline.stop).
        await asyncio.to_thread(lambda: [w.stop() for w in reversed(pipeline.workers)])
    result.stop_s = time.perf_counter() - started
    offsets = _log_sizes(pipeline)
    started = time.perf_counter()
    for worker in pipeline.workers:
        worker.start()
    try:
        async with session.post("/v1/jobs", data=job_form(data, -2)) as response:
            body = await response.json(content_type=None)
            new_job = body.get("job_id") if response.status in (200, 202) else None
            result.new_job_refused = None if new_job else f"{response.status} {body.get('code')}"
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        new_job, result.new_job_refused = None, type(exc).__name__
    pending = set(sample)
    while time.perf_counter() - started < RESTART_TIMEOUT:
        ready = (await _status(session, "/readyz"))[0] == 200
        answered = await asyncio.gather(*(_finished(session, job_id) for job_id in sorted(pending)))
        pending -= {job_id for job_id, ok in zip(sorted(pending), answered) if ok}
        now = time.perf_counter() - started
        if ready and not all(answered):
            result.readyz_early += 1
        if ready and result.readyz_s is None:
            result.readyz_s = now
        if not pending and result.lookups_s is None:
            result.lookups_s = now
        if new_job and result.new_job_s is None and await _finished(session, new_job):
            result.new_job_s = now
        if None not in (result.readyz_s, result.lookups_s) and (result.new_job_s or not new_job):
            break
        await asyncio.sleep(POLL)
    await asyncio.sleep(2)  # the last recovery reports reach the logs
    result.changelog_reads = _changelog_reads(pipeline, offsets)
    return result


# A chunk this much slower than the one before, or a restart slower than the target allows (1.5 times the first),
# has its stack's logs kept: the stack's directory goes with the run.
SLOW_CHUNK = 0.6
SLOW_RESTART = 1.5


def keep_logs(pipeline: EmbeddedPipeline, what: str, made: int) -> None:
    kept = Path(tempfile.gettempdir()) / f"bench-{what.replace(' ', '-')}-{made}-{int(time.time())}"
    shutil.copytree(pipeline.logs, kept)
    print(f"  {what}: the stack's logs are kept in {kept}", flush=True)


async def make_history(pipeline: EmbeddedPipeline, session: aiohttp.ClientSession, files: list[bytes],
                       targets: list[int], concurrency: int, chunk: int = 1000) -> tuple[list, list[Restart]]:  # fmt: skip
    """The user mix (bench/pipeline_load.py's MIX) up to each of ``targets`` jobs, the workers restarted at each;
    returns each chunk's (first job, jobs, jobs/s, failures) and each restart."""
    chunks, restarts, ids, made = [], [], [], 0
    async with Receiver() as receiver:
        for target in targets:
            while made < target:
                count = min(chunk, target - made)
                outcome = await history(session, files, made, count, concurrency, receiver)
                chunks.append((made, count, outcome.rate(), outcome.failures))
                ids += outcome.ids
                made += count
                print(f"  history {made:>6} jobs: {outcome.rate():.1f} jobs/s this chunk, "
                      f"{len(outcome.failures)} not finished {outcome.failures[:2]}", flush=True)  # fmt: skip
                if len(chunks) > 1 and outcome.rate() < SLOW_CHUNK * chunks[-2][2]:
                    keep_logs(pipeline, "slow chunk", made)
            await asyncio.sleep(5)  # webhook deliveries and uniquify zips of the last jobs settle
            restart = await restart_workers(pipeline, session, ids, made, files[0])
            print(f"  restart at {made} jobs: {restart}", flush=True)
            if restarts and restart.readyz_s and restart.readyz_s > SLOW_RESTART * (restarts[0].readyz_s or 0):
                keep_logs(pipeline, "slow restart", made)
            restarts.append(restart)
        print(f"  webhook deliveries received: {receiver.deliveries}", flush=True)
    return chunks, restarts


@dataclass
class Idle:
    seconds: float
    before: dict
    after: dict
    cpu: dict
    s3: dict


def _store_state(pipeline: EmbeddedPipeline) -> dict:
    settings = pipeline.settings
    batches, objects, size, _ = broker_objects(settings)
    pipe_objects, pipe_bytes = bucket_bytes(settings)
    weed, tables = disk_files(settings.data_dir / "seaweedfs"), disk_files(settings.data_dir / "workers")
    return {
        "broker objects": objects, "broker bytes": size, "batch objects": sum(batches.values()),
        "bucket objects": pipe_objects, "bucket bytes": pipe_bytes,
        "seaweedfs disk bytes": sum(weed.values()), "worker tables disk bytes": sum(tables.values()),
        "files": {**{f"seaweedfs/{k}": v for k, v in weed.items()}, **{f"workers/{k}": v for k, v in tables.items()}},
    }  # fmt: skip


async def idle(pipeline: EmbeddedPipeline, seconds: float, metrics_port: int, broker_bucket: str) -> Idle:
    """The store (both buckets, SeaweedFS's and RocksDB's files on disk) before and after ``seconds`` with no
    traffic, with the S3 requests and the CPU of each process kind in between."""
    before = _store_state(pipeline)
    cpu0, s3_0 = cpu_by_kind(pipeline), s3_requests(metrics_port, broker_bucket)
    await asyncio.sleep(seconds)
    cpu1, s3_1 = cpu_by_kind(pipeline), s3_requests(metrics_port, broker_bucket)
    return Idle(seconds, before, _store_state(pipeline), diff(cpu1, cpu0), diff(s3_1, s3_0))


def broker_per_job(before: tuple, after: tuple, jobs: int) -> tuple[dict, float, float, dict]:
    """Between two listings, per job: batch objects by topic, broker objects, broker bytes, batch bytes by topic."""
    batches = {topic: n / jobs for topic, n in diff(after[0], before[0]).items()}
    batch_bytes = {topic: n / jobs for topic, n in diff(after[3], before[3]).items()}
    return batches, (after[1] - before[1]) / jobs, (after[2] - before[2]) / jobs, batch_bytes


def grown(before: dict, after: dict, top: int | None = 8) -> list[tuple[str, int]]:
    """The files that grew most on disk between two ``_store_state``s (all of them for ``top`` None)."""
    changes = diff(after["files"], before["files"])
    return sorted(changes.items(), key=lambda item: -abs(item[1]))[:top]


__all__ = ["Idle", "Outcome", "Restart", "broker_per_job", "grown", "idle", "make_history", "restart_workers"]
