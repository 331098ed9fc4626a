"""The worker's Faust app, built by ``create_app(settings)``: every topic of schemas/topics.py and every
table of schemas/tables.py, and the clients its stages share (object store, exiftool, courier).

Keys and values travel as raw bytes: keys are job ids as UTF-8, values JSON the stages validate themselves
(adapters/courier.py), so a malformed message becomes a dead letter instead of a crashed agent.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections import Counter
from functools import cached_property

import faust
from faust.assignor import PartitionAssignor
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from mode.utils.queues import FlowControlEvent

from adapters.batching_stream import BatchingStream
from adapters.courier import Courier
from adapters.due import DueIndex, DueOf, rebuild_all
from adapters.exiftool import ExifTool
from adapters.kafka import APP_ID, compression_type, end_offsets
from adapters.objects import ObjectStore
from adapters.stable_assignor import StableAssignor
from schemas.settings import Settings
from schemas.tables import TABLES, Table
from schemas.topics import TOPICS, Topic

log = logging.getLogger(__name__)

# Per table partition: RocksDB's defaults (64 MiB memtables, 2 GiB block cache) are sized for one big table, not
# for a dozen small ones in each of several workers on one machine.
ROCKSDB_OPTIONS = {"write_buffer_size": 4 << 20, "max_write_buffer_number": 2, "block_cache_size": 16 << 20}
# A standby's changelog records reach its local store one by one (Faust's default waits for 1,000), so a worker
# killed at any moment has on disk everything it had read and replays nothing twice.
STANDBY_BUFFER_SIZE = 1
# A producer batch (one partition's records in one produce request) is cut at this many uncompressed bytes. At
# aiokafka's 16 KiB a metadata document (~12 KiB) filled a batch alone, so the results of jobs finished together
# still went one batch, and one object on the embedded broker, each.
PRODUCER_BATCH_BYTES = 512 * 1024


class FetchedHighwatersThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # Faust fixes the fetch wait at 1.5 s, which on Tansu every message waited out at every hop
        # (schemas/settings.py: kafka_fetch_wait_ms); aiokafka reads it from here when the consumer starts.
        consumer._fetch_max_wait_ms = self.app.settings.kafka_fetch_wait_ms
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
    (adapters/kafka.py says why) and the fetch wait from settings."""

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


class WorkerApp(faust.App):
    """One worker's app. Stages register their agents, timers and pages on it (``register(app)`` in
    processors/ and sink/) and reach the shared clients through it."""

    settings: Settings
    store: ObjectStore
    exiftool: ExifTool
    courier: Courier
    # Changelog records this process has read, by table (recovery and standby).
    changelog_reads: Counter[str]

    def topic_of(self, contract: Topic) -> faust.TopicT:
        return self._contract_topics[contract.name]

    def table_of(self, contract: Table) -> faust.Table:
        return self._contract_tables[contract.name]

    def due_index(self, contract: Table, due_of: DueOf, name: str = "due") -> DueIndex:
        """This app's index ``name`` over the table of ``contract`` (adapters/due.py), rebuilt from the table with
        ``due_of`` after every recovery: one read of the table per start or rebalance for all its indexes, not per
        timer tick."""
        indexes = self._due_indexes.setdefault(contract.name, {})
        if not indexes:
            self.table_of(contract).on_recover(self._rebuild_indexes(contract))
        if name not in indexes:
            indexes[name] = (DueIndex(), due_of)
        return indexes[name][0]

    def _rebuild_indexes(self, contract: Table):
        async def rebuild() -> None:
            started = time.perf_counter()
            indexes = self._due_indexes[contract.name]
            rebuild_all(self.table_of(contract).items(), list(indexes.values()))
            log.info("table %s indexes rebuilt in %.3f s: %s", contract.name, time.perf_counter() - started,
                     {name: len(index) for name, (index, _) in indexes.items()})  # fmt: skip

        return rebuild

    def active_partitions(self, contract: Topic) -> set[int]:
        """The partitions of the topic this worker owns (not those it keeps a standby table copy of)."""
        return {tp.partition for tp in self.assignor.assigned_actives() if tp.topic == contract.name}

    def _new_transport(self):
        return FetchedHighwatersTransport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepBuffersFlowControl(loop=self.loop)


def worker_name(settings: Settings) -> str:
    """The worker's stable name: its id, else its web port. Its table directory and its groups are named by it."""
    return settings.worker_id or str(settings.worker_port)


def create_app(settings: Settings) -> WorkerApp:
    app = WorkerApp(
        APP_ID,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        # Tables on local disk: a restart reads only the changelog past the offsets each partition's store holds,
        # and a worker without its directory (new, or its disk lost) rebuilds it from the changelog.
        store="rocksdb://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        broker_rebalance_timeout=settings.kafka_rebalance_timeout,
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=settings.table_standby_replicas,
        # Faust's own assignor keeps actives where their standbys are; without standbys, with their worker.
        PartitionAssignor=StableAssignor if settings.table_standby_replicas == 0 else PartitionAssignor,
        Stream=BatchingStream,
        producer_acks=-1,
        producer_linger_ms=settings.kafka_linger_ms,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        producer_compression_type=compression_type(settings),
        web_bind=settings.worker_bind,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        canonical_url=f"http://{settings.worker_host}:{settings.worker_port}",
        datadir=str(settings.data_dir / "workers" / worker_name(settings)),
    )
    app.settings = settings
    app._contract_topics = {
        topic.name: app.topic(topic.name, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions)
        for topic in TOPICS
    }
    # bytes keys and values make Faust pick the raw serializer for both: the key bytes are the job id
    # exactly as the producers wrote it, so lookups are routed to the partition that holds the job.
    app._contract_tables = {
        table.name: app.Table(table.name, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions,
                              help=table.help, options=dict(ROCKSDB_OPTIONS), standby_buffer_size=STANDBY_BUFFER_SIZE,
                              on_changelog_event=count_changelog_read(app, table.name))
        for table in TABLES
    }  # fmt: skip
    app._due_indexes = {}
    app.changelog_reads = Counter()
    for table in TABLES:
        app.table_of(table).on_recover(log_changelog_reads(app, table.name))
    app.store = ObjectStore(settings)
    # One exiftool per worker process, kept open while the process lives.
    app.exiftool = ExifTool(settings.exiftool_path, settings.exiftool_timeout)
    atexit.register(app.exiftool.close)
    app.courier = Courier(app.topic_of, settings.topic_partitions)
    return app


def count_changelog_read(app: WorkerApp, table: str):
    async def on_changelog_event(event) -> None:
        app.changelog_reads[table] += 1

    return on_changelog_event


def log_changelog_reads(app: WorkerApp, table: str):
    """What a start or rebalance cost: with the table directory kept, only the changelog past what it holds."""

    async def on_recover() -> None:
        log.info("table %s recovered: %d changelog records read since start", table, app.changelog_reads[table])

    return on_recover
