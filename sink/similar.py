"""Near-duplicate search: a full replica of the pHash index in every worker, fed from ``medialane.phash``.

Replication rather than scatter-gather: every worker follows every partition of the topic (no consumer
group), so any worker answers any query exactly, and one worker's restart or loss hides nothing. A
replica restores from the newest snapshot in the object store (the index plus the topic offsets it
covers), then reads the topic from those offsets; docs/similar.md says how this grows past one machine. Each
worker commits its last snapshot's offsets under a group of its own, so the embedded broker's retention keeps
what a restore needs and no more.
A search finds only the images of one owner, the API key that made their jobs.

A deleted job's hash leaves the replica when it reads the job's ``medialane.deletions`` record. The two topics
are read side by side, so a deletion can come before the hash it deletes: the replica remembers deleted
job ids and never indexes a hash of one.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from adapters.kafka import APP_ID, end_offsets
from adapters.objects import ObjectStore
from adapters.phash_index import PHashIndex
from adapters.similar_query import SimilarQuery
from adapters.worker_app import WorkerApp, worker_name
from media.phash import ALGORITHM, ALGORITHM_VERSION
from schemas.deletion import JobDeleted
from schemas.errors import InvalidParameter
from schemas.messages import PHashRecord
from schemas.settings import Settings
from schemas.topics import DELETIONS, PHASH
from schemas.views import SimilarImage, SimilarImages

log = logging.getLogger(__name__)

SNAPSHOT_KEY = "index/phash/snapshot.npz"
INDEX_ALGORITHM = f"{ALGORITHM}@{ALGORITHM_VERSION}"


def snapshot_group(settings: Settings) -> str:
    return f"{APP_ID}-phash-snapshot-{worker_name(settings)}"


def register(app: WorkerApp) -> ReplicaFollower:
    """Follows the index in a task of ``app``; the follower's replica answers the worker's ``/similar``."""
    follower = ReplicaFollower(app.settings, app.store)

    @app.task
    async def follow_phash_index() -> None:
        await follower.run()

    return follower


class SimilarityReplica:
    """One process's copy of the index, with what a result needs besides the hash."""

    def __init__(self, index: PHashIndex | None = None, info: dict | None = None, offsets: dict | None = None,
                 deleted: set[str] | None = None, deletion_offsets: dict | None = None):  # fmt: skip
        self.index = index or PHashIndex(INDEX_ALGORITHM)
        # job id -> (name, phash, sha256): the "plus ids" of the memory budget.
        self.info: dict[str, tuple[str, str, str]] = info or {}
        self.offsets: dict[int, int] = offsets or {}
        self.deleted: set[str] = deleted or set()
        self.deletion_offsets: dict[int, int] = deletion_offsets or {}

    def apply(self, record: PHashRecord) -> bool:
        """Index one record; False for a redelivered job or a hash of another algorithm (never compared)."""
        if f"{record.algorithm}@{record.algorithm_version}" != self.index.algorithm:
            log.warning("job %s: pHash algorithm %s@%s is not %s; not indexed", record.job_id,
                        record.algorithm, record.algorithm_version, self.index.algorithm)  # fmt: skip
            return False
        if record.job_id in self.info or record.job_id in self.deleted:
            return False
        self.index.add(record.job_id, int(record.phash, 16), record.owner)
        self.info[record.job_id] = (record.name, record.phash, record.sha256)
        return True

    def remove(self, deletion: JobDeleted) -> bool:
        """Take a deleted job's hash out of the index, or keep it out if it comes later; False for a redelivery."""
        if deletion.job_id in self.deleted:
            return False
        self.deleted.add(deletion.job_id)
        if self.info.pop(deletion.job_id, None) is not None:
            self.index.remove(deletion.job_id)
        return True

    def search(self, query: SimilarQuery) -> SimilarImages:
        hashes = [(query.phash, False)]
        if query.mirror:
            if query.mirrored_phash is None:
                raise InvalidParameter(
                    "transforms=mirror needs the image, not only its hash: search by job or upload the image",
                    code="invalid_transforms",
                )
            hashes.append((query.mirrored_phash, True))
        best: dict[str, tuple[int, bool]] = {}
        for hash_hex, mirrored in hashes:
            for job_id, _, distance in self.index.query(int(hash_hex, 16), query.max_distance, query.limit + 1,
                                                        query.owner):  # fmt: skip
                if job_id != query.exclude and (job_id not in best or distance < best[job_id][0]):
                    best[job_id] = (distance, mirrored)
        ranked = sorted(best.items(), key=lambda item: item[1][0])[: query.limit]
        results = [self._result(job_id, distance, mirrored, query.sha256) for job_id, (distance, mirrored) in ranked]
        return SimilarImages(phash=query.phash, max_distance=query.max_distance, algorithm=INDEX_ALGORITHM,
                             results=results)  # fmt: skip

    def _result(self, job_id: str, distance: int, mirrored: bool, sha256: str | None) -> SimilarImage:
        name, phash, file_sha256 = self.info[job_id]
        return SimilarImage(
            job_id=job_id, name=name, phash=phash, distance=distance, mirrored=mirrored,
            exact_duplicate=None if sha256 is None else sha256 == file_sha256,
        )  # fmt: skip

    def snapshot(self) -> bytes:
        """The index (with each hash's owner), the id map as columns (compact and quick to load at millions of
        ids), the offsets."""
        names, phashes, digests = zip(*self.info.values()) if self.info else ((), (), ())
        out = io.BytesIO()
        np.savez(
            out,
            index=np.frombuffer(self.index.snapshot(), dtype=np.uint8),
            **_packed("ids", list(self.info)),
            **_packed("names", names),
            phashes=np.array([int(h, 16) for h in phashes], dtype=np.uint64),
            sha256=np.frombuffer(b"".join(bytes.fromhex(d) for d in digests), dtype=np.uint8),
            offsets=np.frombuffer(json.dumps(self.offsets).encode(), dtype=np.uint8),
            **_packed("deleted", sorted(self.deleted)),
            deletion_offsets=np.frombuffer(json.dumps(self.deletion_offsets).encode(), dtype=np.uint8),
        )
        return out.getvalue()

    @classmethod
    def restore(cls, data: bytes) -> SimilarityReplica:
        with np.load(io.BytesIO(data)) as arrays:
            index = PHashIndex.restore(arrays["index"].tobytes())
            ids, names = _unpacked(arrays, "ids"), _unpacked(arrays, "names")
            phashes = [f"{h:016x}" for h in arrays["phashes"].tolist()]
            digests = [row.tobytes().hex() for row in arrays["sha256"].reshape(-1, 32)]
            offsets = _offsets(arrays, "offsets")
            # Snapshots made before deletions existed have neither: the deletions topic is read from its start.
            deleted = set(_unpacked(arrays, "deleted")) if "deleted_blob" in arrays.files else set()
            deletion_offsets = _offsets(arrays, "deletion_offsets") if "deletion_offsets" in arrays.files else {}
        return cls(index, dict(zip(ids, zip(names, phashes, digests))), offsets, deleted, deletion_offsets)


def _offsets(arrays, name: str) -> dict[int, int]:
    return {int(p): o for p, o in json.loads(arrays[name].tobytes()).items()}


def _packed(name: str, strings) -> dict[str, np.ndarray]:
    """Strings as one UTF-8 blob and their lengths: no pickling, and any character allowed."""
    encoded = [text.encode() for text in strings]
    return {f"{name}_blob": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            f"{name}_lengths": np.array([len(e) for e in encoded], dtype=np.uint32)}  # fmt: skip


def _unpacked(arrays, name: str) -> list[str]:
    blob = arrays[f"{name}_blob"].tobytes()
    ends = np.cumsum(arrays[f"{name}_lengths"]).tolist()
    return [blob[start:end].decode() for start, end in zip([0, *ends[:-1]], ends)]


class ReplicaFollower:
    """Keeps this process's replica current: newest snapshot first, then the topic, snapshots now and then."""

    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self.replica = SimilarityReplica()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        self.replica = await asyncio.to_thread(self._restore)
        # The partitions are assigned, never subscribed: the group only records the offsets of this worker's
        # last snapshot, below which the embedded broker's retention may cut (adapters/broker_retention.py).
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False,
                                    group_id=snapshot_group(self.settings),
                                    fetch_max_wait_ms=self.settings.kafka_fetch_wait_ms)  # fmt: skip
        await consumer.start()
        try:
            partitions = [TopicPartition(topic.name, p) for topic in (PHASH, DELETIONS)
                          for p in consumer.partitions_for_topic(topic.name) or ()]  # fmt: skip
            consumer.assign(partitions)
            for tp in partitions:
                offsets = self._offsets_of(tp.topic)
                if tp.partition in offsets:
                    consumer.seek(tp, offsets[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            await self._follow(consumer, partitions)
        finally:
            await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        ends = await end_offsets(self.settings.kafka_bootstrap, partitions)
        last_snapshot, changed = time.monotonic(), False
        while True:
            for tp, records in (await consumer.getmany(timeout_ms=100, max_records=5000)).items():
                apply = self._apply if tp.topic == PHASH.name else self._remove
                for record in records:
                    changed |= apply(record.value)
                    self._offsets_of(tp.topic)[tp.partition] = record.offset + 1
            if not self.ready.is_set() and all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                log.info("pHash replica caught up: %d hashes", len(self.replica.index))
                self.ready.set()
            if changed and time.monotonic() - last_snapshot > self.settings.phash_snapshot_seconds:
                # Off the event loop, so queries go on; this task is the only writer and waits for it,
                # so the index and its offsets describe the same moment.
                snapshot = await asyncio.to_thread(self.replica.snapshot)
                await asyncio.to_thread(self.store.put_bytes, SNAPSHOT_KEY, snapshot)
                # Committed once the snapshot is stored: a replica restored from the newest snapshot (any
                # worker's) needs the topics from offsets no lower than the lowest worker's last snapshot. A
                # commit that fails (the broker restarting) leaves the older, lower one: the follower goes on.
                try:
                    # Every partition's position, not only those the snapshot names: a replica restored from it
                    # reads the others from their earliest offset, which the retention must keep.
                    await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
                except KafkaError as exc:
                    log.warning("pHash replica: snapshot offsets not committed (%s); the next snapshot will",
                                type(exc).__name__)  # fmt: skip
                last_snapshot, changed = time.monotonic(), False

    def _offsets_of(self, topic: str) -> dict[int, int]:
        return self.replica.offsets if topic == PHASH.name else self.replica.deletion_offsets

    def _apply(self, value: bytes) -> bool:
        try:
            return self.replica.apply(PHashRecord.model_validate_json(value))
        except ValidationError:
            # The sink's agent dead-letters it; the replica only skips it.
            return False

    def _remove(self, value: bytes) -> bool:
        try:
            return self.replica.remove(JobDeleted.model_validate_json(value))
        except ValidationError:
            # The status table's agent dead-letters it; the replica only skips it.
            return False

    def _restore(self) -> SimilarityReplica:
        snapshot = self.store.get_bytes_or_none(SNAPSHOT_KEY)
        if snapshot is None:
            return SimilarityReplica()
        replica = SimilarityReplica.restore(snapshot)
        log.info("pHash replica restored from snapshot: %d hashes", len(replica.index))
        return replica
