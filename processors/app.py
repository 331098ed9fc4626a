"""The worker's Faust app: its topics and its table, declared here and nowhere else.

Every topic is keyed by job id as raw UTF-8 bytes and carries JSON the stages validate themselves
(schemas/messages.py), so a malformed message becomes a dead letter instead of a crashed agent.
"""

from __future__ import annotations

from functools import cached_property

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from mode.utils.queues import FlowControlEvent

from processors.offsets import end_offsets
from schemas.settings import get_settings

settings = get_settings()


class FetchedHighwatersThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # Faust fixes the fetch wait at 1.5 s, which on Tansu every message waited out at every hop
        # (schemas/settings.py: kafka_fetch_wait_ms); aiokafka reads it from here when the consumer starts.
        consumer._fetch_max_wait_ms = settings.kafka_fetch_wait_ms
        return consumer

    async def _highwaters(self, partitions):
        bootstrap = ",".join(url.authority for url in self.app.conf.broker_consumer)
        return await end_offsets(bootstrap, list(partitions))

    async def seek_to_committed(self):
        return await self.call_thread(self._seek_streams_to_committed)

    async def _seek_streams_to_committed(self):
        """After a rebalance Faust rewinds the streams here, over records it took from aiokafka and then
        discarded (while recovering, its set of active partitions is at moments empty, which aiokafka reads
        as every partition). aiokafka seeks only partitions with a committed offset above 0, so a partition
        nothing was committed for yet (one a killed worker had just taken) lost those records for good: it
        goes back to its beginning instead, which is where its uncommitted records start."""
        consumer = self._ensure_consumer()
        committed = await consumer.seek_to_committed()
        uncommitted = [tp for tp, offset in committed.items() if not offset and not self.consumer._is_changelog_tp(tp)]
        if uncommitted:
            await consumer.seek_to_beginning(*uncommitted)
        return committed


class FetchedHighwatersConsumer(Consumer):
    def _new_consumer_thread(self):
        return FetchedHighwatersThread(self, loop=self.loop, beacon=self.beacon)


class FetchedHighwatersTransport(Transport):
    """Faust's aiokafka transport, with table recovery reading changelogs to their true end
    (processors/offsets.py says why) and the fetch wait from settings."""

    Consumer = FetchedHighwatersConsumer


class KeepBuffersFlowControl(FlowControlEvent):
    """Faust's flow control, except that resuming flow that already runs leaves the agents' buffers alone.

    Faust empties every agent's buffer whenever it resumes flow. After a rebalance it resumes flow to replay
    the tables' changelogs, then resumes the stream partitions, seeks them to their committed offsets (one
    request per partition) and resumes flow once more. Records fetched during that seek were handed to the
    agents and then emptied out, and nothing fetched them again: their jobs waited for the next rebalance,
    or were skipped for good once Faust committed a later record (it lets one missing offset through),
    faust-streaming/faust#596. With a short fetch wait the records one stage writes during the seek reach the
    next stage within it too and pile up behind it; with Faust's 1.5 s that was rarer, not impossible.
    Buffers filled before a suspension are still emptied: Faust clears them when it suspends flow and
    again when it resumes from a suspension.
    """

    def resume(self) -> None:
        if not self.is_active():
            super().resume()


class MedialaneApp(faust.App):
    def _new_transport(self):
        return FetchedHighwatersTransport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepBuffersFlowControl(loop=self.loop)


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
