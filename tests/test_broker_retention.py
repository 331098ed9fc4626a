"""The embedded broker's retention (adapters/broker_retention.py): the batch objects every group has read, or that
are past their topic's retention, leave the broker's bucket; nothing a reader still needs does, and every reader
(with a group, without one, from the earliest offset) keeps reading across the cut."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from adapters.broker_retention import Batch, BrokerRetention, Rule, batch_prefix, expired, rule_of
from adapters.objects import ObjectStore
from compose.embedded import BROKER_BUCKET_SUFFIX
from conftest import poll_job
from schemas.topics import JOBS, PHASH, STATUS
from sink.similar import ReplicaFollower, snapshot_group
from test_pipeline import CANON, submit, upload

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
GRACE = timedelta(seconds=3)
KEEP_A_WEEK = Rule(timedelta(days=7))


def batches(*bases: int, age: timedelta = timedelta(minutes=1)) -> list[Batch]:
    return [Batch(f"records/{base:020d}.batch", base, NOW - age) for base in bases]


def test_a_batch_goes_once_every_group_has_read_all_of_it():
    listed = batches(0, 3, 7, 9)
    # Committed 7: the batches at 0 and 3 (offsets 0-6) are read; the one at 7 holds offset 7, not yet read.
    assert [b.base_offset for b in expired(listed, 7, KEEP_A_WEEK, NOW, GRACE)] == [0, 3]
    assert [b.base_offset for b in expired(listed, 8, KEEP_A_WEEK, NOW, GRACE)] == [0, 3]
    assert expired(listed, 2, KEEP_A_WEEK, NOW, GRACE) == []


def test_the_newest_batch_always_stays():
    assert [b.base_offset for b in expired(batches(0, 3), 100, KEEP_A_WEEK, NOW, GRACE)] == [0]
    assert expired(batches(0), 100, KEEP_A_WEEK, NOW, GRACE) == []


def test_a_read_batch_stays_through_the_grace_for_readers_without_a_group():
    young = batches(0, 3, 7, age=timedelta(seconds=1))
    assert expired(young, 100, KEEP_A_WEEK, NOW, GRACE) == []


def test_without_a_group_only_the_retention_cuts():
    listed = batches(0, 3, age=timedelta(hours=1)) + batches(7)
    assert expired(listed, None, KEEP_A_WEEK, NOW, GRACE) == []
    assert [b.base_offset for b in expired(listed, None, Rule(timedelta(minutes=30)), NOW, GRACE)] == [0, 3]
    # Past the retention, a batch goes even if a group has not read it, as on Apache Kafka.
    assert [b.base_offset for b in expired(listed, 1, Rule(timedelta(seconds=30)), NOW, GRACE)] == [0, 3]


def test_what_stays_is_one_unbroken_tail():
    listed = batches(0) + batches(3, age=timedelta(seconds=1)) + batches(7, 9)
    assert [b.base_offset for b in expired(listed, 100, KEEP_A_WEEK, NOW, GRACE)] == [0]


def test_compacted_and_kept_forever_topics_by_their_kafka_configs():
    assert rule_of({"cleanup.policy": "compact"}).compacted
    assert expired(batches(0, 3, 7), 100, rule_of({"cleanup.policy": "compact"}), NOW, GRACE) == []
    forever = rule_of({"retention.ms": "-1"})
    assert forever.retention is None and expired(batches(0, 3, age=timedelta(days=999)), None, forever, NOW, GRACE) == []
    assert rule_of({"retention.ms": "60000"}).retention == timedelta(minutes=1)


# On the session's broker and object store.


async def new_topic(settings) -> str:
    name = f"test.retention.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def produce_each(settings, topic: str, values: range) -> None:
    """One produce request, so one batch object, for each value."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, str(value).encode(), key=b"k")
    finally:
        await producer.stop()


async def read(settings, topic: str, count: int, group: str | None = None, commit: bool = False) -> list[int]:
    """``count`` values from where ``group`` left off (or, without one, from the earliest offset kept)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        if group is None:
            consumer.assign([TopicPartition(topic, 0)])
        else:
            consumer.subscribe([topic])
        values = []
        async with asyncio.timeout(30):
            while len(values) < count:
                for records in (await consumer.getmany(timeout_ms=200, max_records=count - len(values))).values():
                    values += [int(r.value) for r in records]
        if commit:
            await consumer.commit()
        return values
    finally:
        await consumer.stop()


def stored_offsets(store: ObjectStore, bucket: str, topic: str) -> list[int]:
    names = [o.object_name for o in store.client.list_objects(bucket, prefix=batch_prefix(topic, 0), recursive=True)]
    return [int(name.rsplit("/", 1)[-1].split(".")[0]) for name in names]


async def test_batches_every_group_has_read_leave_the_bucket_and_every_reader_reads_on(stack):
    settings = stack.settings
    store, bucket = ObjectStore(settings), f"{settings.s3_bucket}{BROKER_BUCKET_SUFFIX}"
    topic = await new_topic(settings)
    await produce_each(settings, topic, range(10))
    assert await read(settings, topic, 6, group="ahead", commit=True) == list(range(6))
    assert await read(settings, topic, 3, group="behind", commit=True) == [0, 1, 2]
    retention = BrokerRetention(store.client, bucket, {topic: KEEP_A_WEEK}, 1, grace=timedelta(0))

    # The lowest group ("behind", at 3) holds the cut: offsets 0-2 are read by both.
    assert await asyncio.to_thread(retention.run_once) == 3
    assert stored_offsets(store, bucket, topic) == list(range(3, 10))

    assert await read(settings, topic, 3, group="behind", commit=True) == [3, 4, 5]
    assert await asyncio.to_thread(retention.run_once) == 3
    assert stored_offsets(store, bucket, topic) == list(range(6, 10))
    # A reader without a group, from the earliest offset, starts at the first batch kept.
    assert await read(settings, topic, 4) == [6, 7, 8, 9]
    # The groups read on, past the cut, what is produced after it.
    await produce_each(settings, topic, range(10, 12))
    assert await read(settings, topic, 6, group="ahead") == list(range(6, 12))
    assert await read(settings, topic, 6, group="behind") == list(range(6, 12))
    # Nothing read by both yet: nothing more goes, whatever the passes.
    assert await asyncio.to_thread(retention.run_once) == 0


async def test_past_its_retention_a_batch_goes_unread_and_a_compacted_topic_never(stack):
    settings = stack.settings
    store, bucket = ObjectStore(settings), f"{settings.s3_bucket}{BROKER_BUCKET_SUFFIX}"
    timed, compacted = await new_topic(settings), await new_topic(settings)
    for topic in (timed, compacted):
        await produce_each(settings, topic, range(4))
    rules = {timed: Rule(timedelta(hours=1)), compacted: Rule(None, compacted=True)}
    retention = BrokerRetention(store.client, bucket, rules, 1, grace=timedelta(0))

    assert await asyncio.to_thread(retention.run_once) == 0
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert await asyncio.to_thread(retention.run_once, later) == 3
    assert stored_offsets(store, bucket, timed) == [3]
    assert stored_offsets(store, bucket, compacted) == [0, 1, 2, 3]


async def test_the_running_stack_keeps_its_work_topics_to_what_is_still_being_read(stack, api, settings):
    """The stack runs its retention: once jobs are done, their requests and status events leave the broker, and
    the jobs stay readable (their state is in the tables, whose changelogs are never cut)."""
    job_ids = [await submit(api, CANON) for _ in range(12)]
    jobs = [await poll_job(api, job_id, timeout=60) for job_id in job_ids]
    store, bucket = ObjectStore(stack.settings), f"{stack.settings.s3_bucket}{BROKER_BUCKET_SUFFIX}"

    def kept() -> int:
        return sum(len(stored_offsets_of(store, bucket, t.name, p)) for t in (JOBS, STATUS)
                   for p in range(settings.topic_partitions))  # fmt: skip

    async with asyncio.timeout(60):
        # Every partition of both topics down to its newest batch (or none at all, where no job landed).
        while kept() > 2 * settings.topic_partitions:
            await asyncio.sleep(0.5)
    assert stack.retention.deleted[JOBS.name] > 0 and stack.retention.deleted[STATUS.name] > 0
    assert [await poll_job(api, job_id) for job_id in job_ids] == jobs


def stored_offsets_of(store: ObjectStore, bucket: str, topic: str, partition: int) -> list[str]:
    return list(store.client.list_objects(bucket, prefix=batch_prefix(topic, partition), recursive=True))


async def test_the_phash_topic_is_cut_below_every_workers_last_snapshot_and_a_new_replica_has_every_hash(
        stack, api, settings):  # fmt: skip
    """medialane.phash is kept forever by age, and its readers (every worker's index replica) join no group; each
    worker commits the offsets of its last snapshot under a group of its own, so the retention cuts below the
    lowest of them, and a replica restored from the newest snapshot still finds every hash."""
    job_ids = []
    for _ in range(6):
        async with api.post("/v1/jobs", data=upload(CANON, ops="phash")) as response:
            assert response.status == 202
            job_ids.append((await response.json())["job_id"])
    for job_id in job_ids:
        await poll_job(api, job_id, timeout=60)
    store, bucket = ObjectStore(stack.settings), f"{stack.settings.s3_bucket}{BROKER_BUCKET_SUFFIX}"
    snapshot_groups = {snapshot_group(settings.model_copy(update={"worker_id": str(i)})) for i in range(2)}

    def cut_to_newest() -> bool:
        groups = {name.split("/")[4] for name in stack.retention.groups.committed if f"/offsets/{PHASH.name}/" in name}
        kept = [stored_offsets_of(store, bucket, PHASH.name, p) for p in range(settings.topic_partitions)]
        return snapshot_groups <= groups and all(len(batches) <= 1 for batches in kept)

    async with asyncio.timeout(60):
        while not await asyncio.to_thread(cut_to_newest):
            await asyncio.sleep(0.5)
    follower = ReplicaFollower(settings, store)
    task = asyncio.create_task(follower.run())
    try:
        async with asyncio.timeout(30):
            await follower.ready.wait()
    finally:
        task.cancel()
    assert set(job_ids) <= set(follower.replica.info)
