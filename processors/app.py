"""The worker's Faust app: its topics and its table, declared here and nowhere else.

Every topic is keyed by job id as raw UTF-8 bytes and carries JSON the stages validate themselves
(schemas/messages.py), so a malformed message becomes a dead letter instead of a crashed agent.
"""

from __future__ import annotations

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport

from processors.offsets import end_offsets
from schemas.settings import get_settings

settings = get_settings()


class FetchedHighwatersThread(AIOKafkaConsumerThread):
    async def _highwaters(self, partitions):
        bootstrap = ",".join(url.authority for url in self.app.conf.broker_consumer)
        return await end_offsets(bootstrap, list(partitions))


class FetchedHighwatersConsumer(Consumer):
    def _new_consumer_thread(self):
        return FetchedHighwatersThread(self, loop=self.loop, beacon=self.beacon)


class FetchedHighwatersTransport(Transport):
    """Faust's aiokafka transport, with table recovery reading changelogs to their true end
    (processors/offsets.py says why)."""

    Consumer = FetchedHighwatersConsumer


class MedialaneApp(faust.App):
    def _new_transport(self):
        return FetchedHighwatersTransport(self.conf.broker_consumer, self)


app = MedialaneApp(
    "medialane",
    broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
    store="memory://",
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=1,
    key_serializer="raw",
    value_serializer="raw",
    broker_rebalance_timeout=settings.kafka_rebalance_timeout,
    broker_session_timeout=settings.kafka_session_timeout,
    broker_heartbeat_interval=settings.kafka_heartbeat_interval,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    web_bind=settings.worker_bind,
    web_host=settings.worker_host,
    web_port=settings.worker_port,
    canonical_url=f"http://{settings.worker_host}:{settings.worker_port}",
    datadir=str(settings.data_dir / "workers" / str(settings.worker_port)),
)


def _topic(name: str) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions)


jobs_topic = _topic("medialane.jobs")
media_topic = _topic("medialane.media")
metadata_topic = _topic("medialane.metadata")
phash_topic = _topic("medialane.phash")
stripped_topic = _topic("medialane.stripped")
uniquify_jobs_topic = _topic("medialane.uniquify.jobs")
copy_tasks_topic = _topic("medialane.uniquify.tasks")
copies_topic = _topic("medialane.uniquify.copies")
uniquified_topic = _topic("medialane.uniquified")
status_topic = _topic("medialane.status")
webhooks_topic = _topic("medialane.webhooks")
dlq_topic = _topic("medialane.dlq")


def _table(name: str, help: str) -> faust.Table:
    # bytes keys and values make Faust pick the raw serializer for both: the key bytes are the job id
    # exactly as the producers wrote it, so lookups are routed to the partition that holds the job.
    return app.Table(name, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions, help=help)


status_table = _table("status", "JobView JSON by job id (UTF-8), folded from medialane.status.")
uniquify_table = _table(
    "uniquify", "Each uniquification job's ledger (sink/ledger.py) by job id, folded from medialane.uniquify.copies."
)
webhooks_table = _table(
    "webhooks", "Each webhook delivery (sink/webhooks.py) by job id, folded from medialane.webhooks; kept once done."
)
