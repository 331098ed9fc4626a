"""Tables on local disk (RocksDB): a restarted worker reads only the changelog past what its directory holds, and a
worker that lost its directory rebuilds every job from the changelog. These tests kill and restart the session's
workers and leave them running again."""

from __future__ import annotations

import asyncio
import re
import shutil

from aiokafka import TopicPartition
from faust.stores.rocksdb import Store
from rocksdict import AccessType, Rdict

from conftest import poll_job
from adapters.kafka import changelog_topic, end_offsets
from schemas.tables import STATUS
from test_pipeline import CANON, submit

OFFSET_KEY = Store.offset_key
READS = re.compile(r"table status recovered: (\d+) changelog records read since start")


async def status_changelog_size(settings) -> int:
    partitions = [TopicPartition(changelog_topic(STATUS), p) for p in range(settings.topic_partitions)]
    return sum((await end_offsets(settings.kafka_bootstrap, partitions)).values())


def log_size(child) -> int:
    return child.log_path.stat().st_size


def status_reads_since(child, offset: int) -> int:
    """The records of the status changelog the worker had read when its tables last finished recovering."""
    with child.log_path.open("rb") as log:
        log.seek(offset)
        found = READS.findall(log.read().decode(errors="replace"))
    assert found, child.log_tail(40)
    return int(found[-1])


async def finished_jobs(api, count: int) -> list[dict]:
    job_ids = [await submit(api, CANON) for _ in range(count)]
    return [await poll_job(api, job_id, timeout=60) for job_id in job_ids]


def held_offsets(settings, worker_id: str) -> dict[int, int]:
    """The next status changelog offset each partition's store in the worker's directory holds (0: none held)."""
    held = {}
    for partition in range(settings.topic_partitions):
        path = settings.data_dir.resolve() / "workers" / worker_id / "v1" / "tables" / f"{STATUS.name}-{partition}.db"
        offset = None
        if path.exists():
            db = Rdict(str(path), access_type=AccessType.read_only())
            offset = db.get(OFFSET_KEY)
            db.close()
        held[partition] = 0 if offset is None else int(offset) + 1
    return held


async def status_changelog_ends(settings) -> dict[int, int]:
    partitions = [TopicPartition(changelog_topic(STATUS), p) for p in range(settings.topic_partitions)]
    return {tp.partition: end for tp, end in (await end_offsets(settings.kafka_bootstrap, partitions)).items()}


async def test_a_restarted_worker_reads_only_the_changelog_written_while_it_was_down(api, settings, workers):
    """Worker 1 alone holds every partition, is killed, worker 0 runs jobs meanwhile, then worker 1 comes back and
    takes every partition over again: it reads only what was written while it was down. (The workers keep no
    standby copies on the embedded broker, so this is how a worker comes to hold every partition.)"""
    worker, other = workers.children[1], workers.children[0]
    other.kill()
    history = await finished_jobs(api, 20)
    # A job's last status reaches the table's changelog just after the job is seen completed: let it be acknowledged.
    await asyncio.sleep(1)
    worker.kill()
    before = await status_changelog_ends(settings)
    held = held_offsets(settings, "1")
    await asyncio.to_thread(workers.start, 0)
    during = await finished_jobs(api, 3)
    offset = log_size(worker)
    await asyncio.to_thread(workers.start, 1)
    other.kill()
    jobs = [await poll_job(api, job["job_id"], timeout=60) for job in history + during]
    reads = status_reads_since(worker, offset)
    # Measured once worker 1 has read: worker 0 goes on writing until it is killed (the delivery states of earlier
    # tests' webhooks still being retried reach the status table too), and all of it is the tail.
    after = await status_changelog_ends(settings)
    await asyncio.to_thread(workers.start, 0)

    tail = sum(after.values()) - sum(before.values())
    # A job's status events, folded together, make at least one changelog record.
    assert sum(before.values()) >= 20 and tail >= 3
    # Its directory held every partition to the end (a record not yet marked as held when it was killed may be
    # read again: one a partition), and it read only the tail, not the history again.
    assert all(before[p] - held[p] <= 1 for p in before), (before, held)
    assert reads <= tail + settings.topic_partitions, (reads, tail, before)
    assert jobs == history + during


async def test_a_worker_whose_table_directory_was_deleted_rebuilds_every_job(api, settings, workers):
    jobs = await finished_jobs(api, 8)
    rebuilt, other = workers.children[1], workers.children[0]
    rebuilt.kill()
    shutil.rmtree(settings.data_dir.resolve() / "workers" / "1")
    history = await status_changelog_size(settings)
    offset = log_size(rebuilt)
    await asyncio.to_thread(workers.start, 1)
    # The other worker gone, the rebuilt one owns every partition and answers every lookup from its rebuilt tables.
    other.kill()
    answers = [await poll_job(api, job["job_id"], timeout=60) for job in jobs]
    # Counted when it took every partition over.
    reads = status_reads_since(rebuilt, offset)
    await asyncio.to_thread(workers.start, 0)

    assert reads >= history
    assert answers == jobs


async def test_workers_stopped_one_after_the_other_and_started_again_replay_nothing(api, settings, workers):
    """As `medialane up` stops and starts them. Each worker is dealt the partitions it held before
    (adapters/stable_assignor.py), which its directory holds to the end: nothing was written while both were down,
    so neither reads more than a record a partition (one not yet marked as held when it stopped)."""
    history = await finished_jobs(api, 12)
    await asyncio.sleep(1)
    for worker in reversed(workers.children):
        await asyncio.to_thread(worker.stop)
    offsets = [log_size(worker) for worker in workers.children]
    await asyncio.to_thread(workers.start)

    jobs = [await poll_job(api, job["job_id"], timeout=60) for job in history]
    reads = [status_reads_since(worker, offset) for worker, offset in zip(workers.children, offsets)]

    assert all(count <= settings.topic_partitions for count in reads), reads
    assert jobs == history
