"""Kafka helpers every stage shares: topic creation, and end offsets as fetch responses report them.

Tansu 0.6 answers ListOffsets(latest), which ``end_offsets`` asks, with a stale offset, while every fetch
response carries the partition's true high watermark. Whatever waits to "catch up to the end" (a Faust
table's recovery, a replica's readiness, a watcher starting at the end) asks here instead; on Apache
Kafka both answers agree.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.tables import TABLES, Table
from schemas.topics import JOBS, PHASH, TOPICS
from schemas.settings import Settings

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 20
# The worker's Faust app id: its consumer group, and the prefix of its tables' changelog topics.
APP_ID = "medialane"
# Every replica of the pHash index is rebuilt from this topic (past its snapshot): it is never cut.
KEPT_FOREVER = {PHASH.name}


def key_partition(key: bytes, partitions: int) -> int:
    """The partition a record keyed ``key`` goes to when its producer does not choose one: Kafka's default
    partitioner (murmur2), which aiokafka and Faust use alike. Job topics and tables are partitioned this way."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def changelog_topic(table: Table) -> str:
    return f"{APP_ID}-{table.name}-changelog"


def compression_type(settings: Settings) -> str | None:
    """Every producer's ``compression_type``: Tansu stores batches as sent, so compression shrinks its objects too."""
    return None if settings.kafka_compression == "none" else settings.kafka_compression


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Each topic's config on Apache Kafka: work and result topics deleted past the retention, changelogs compacted
    (one record per key is all a table's recovery needs). Tansu ignores both (docs/operations.md)."""
    retention = str(int(settings.topic_retention_hours * 3600 * 1000))
    configs = {topic.name: {"retention.ms": "-1" if topic.name in KEPT_FOREVER else retention} for topic in TOPICS}
    return configs | {changelog_topic(table): {"cleanup.policy": "compact"} for table in TABLES}


async def end_offsets(bootstrap: str, partitions: list[TopicPartition], timeout: float = 10.0) -> dict:
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=FETCH_WAIT_MS)  # fmt: skip
    await consumer.start()
    try:
        listed = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp in partitions:
            # Fetching from just before the listed end keeps the response small when it is right.
            consumer.seek(tp, max(listed[tp] - 1, 0))
        async with asyncio.timeout(timeout):
            while any(consumer.highwater(tp) is None for tp in partitions):
                await consumer.getmany(timeout_ms=FETCH_WAIT_MS * 5, max_records=1)
            ends = {tp: max(listed[tp], consumer.highwater(tp)) for tp in partitions}
            # After a restart Tansu has served records past the high watermark it reports: read on
            # from there until a fetch brings nothing more.
            for tp in partitions:
                consumer.seek(tp, ends[tp])
            while batches := await consumer.getmany(timeout_ms=FETCH_WAIT_MS * 5):
                for tp, records in batches.items():
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
        return ends
    finally:
        await consumer.stop()


async def create_topics(settings: Settings) -> Settings:
    """Create every medialane topic and table changelog with the configured partitions and ``topic_configs``;
    existing topics are left as they are. Returns ``settings`` with the partitions the topics have: a stack's
    topics keep the count they were created with (job ids are routed to partitions by it), whatever the setting
    says now, so every service of the stack takes that count from here."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=1, topic_configs=config)
            for name, config in topic_configs(settings).items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        if JOBS.name not in existing:
            return settings
        (described,) = await admin.describe_topics([JOBS.name])
    finally:
        await admin.close()
    partitions = len(described["partitions"])
    if partitions != settings.topic_partitions:
        log.warning("the topics have %d partitions, as they were created: used instead of the %d configured",
                    partitions, settings.topic_partitions)  # fmt: skip
    return settings.model_copy(update={"topic_partitions": partitions})
