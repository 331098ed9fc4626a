"""The embedded broker's retention, which the project enforces itself: Tansu's S3 engine cannot.

Tansu 0.6 stores a partition as one object per produce request (``…/partitions/<n>/records/<offset>.batch``),
ignores ``retention.ms`` and ``cleanup.policy``, cannot delete records, and lists *every* batch object of a
partition on each fetch that finds data, so a topic read continuously gets slower with every batch it keeps.
This module deletes those objects from the broker's bucket (the project's own) by the rules Apache Kafka would
apply through ``topic_configs``, and sooner where nothing can still need them:

- a batch of a topic whose every reader commits (a consumer group) goes once every group that has committed on
  its partition is past its last record, and it is at least ``grace`` old — the readers without a group (ingest's
  status watcher, which tails ``medialane.status`` from its end) read within that;
- any batch goes once older than the topic's ``retention.ms`` (never for ``-1``), as on Apache Kafka;
- a compacted topic (the tables' changelogs) is never cut here: a worker that lost its disk rebuilds from it.

The pHash replicas read ``medialane.phash`` and ``medialane.deletions`` without joining a group, but each worker
commits its last snapshot's offsets under a group of its own (sink/similar.py), so those count like any group.

A fetch from an offset whose batch is gone gets the next batch kept: Kafka clients skip gaps, as after compaction.
The newest batch of a partition is always kept. A group's commits that have not moved for a topic's retention
no longer hold it back (Kafka forgets such offsets too).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from minio import Minio
from minio.deleteobjects import DeleteObject

from adapters.kafka import topic_configs
from schemas.settings import Settings

log = logging.getLogger(__name__)

CLUSTER = "tansu_cluster"
TOPICS_PREFIX = f"clusters/{CLUSTER}/topics/"
GROUPS_PREFIX = f"clusters/{CLUSTER}/groups/consumers/"
# A pass every few seconds keeps a busy partition's batches to about what its groups read in that time; the age
# rule, and partitions no group moved on, need a pass only now and then.
PASS_SECONDS = 2.0
AGE_PASS_EVERY = 30


@dataclass(frozen=True)
class Batch:
    key: str
    base_offset: int
    written: datetime


@dataclass(frozen=True)
class Rule:
    """What Apache Kafka would be told of the topic: ``retention`` None for kept forever; compacted topics are
    not cut at all."""

    retention: timedelta | None
    compacted: bool = False


def batch_prefix(topic: str, partition: int) -> str:
    return f"{TOPICS_PREFIX}{topic}/partitions/{partition:010d}/records/"


def rule_of(config: dict[str, str]) -> Rule:
    """The rule from a topic's Kafka config (``adapters.kafka.topic_configs``)."""
    if config.get("cleanup.policy") == "compact":
        return Rule(None, compacted=True)
    retention_ms = int(config.get("retention.ms", "-1"))
    return Rule(None if retention_ms < 0 else timedelta(milliseconds=retention_ms))


def expired(batches: list[Batch], floor: int | None, rule: Rule, now: datetime, grace: timedelta) -> list[Batch]:
    """The batches (oldest first, as listed) that may go: every record read by every group (below ``floor``, the
    lowest committed offset; None: no group reads it) and ``grace`` old, or past the retention. Stops at the
    first batch kept, so that what stays is always one unbroken tail; the newest batch always stays."""
    if rule.compacted:
        return []
    gone = []
    for batch, following in zip(batches, batches[1:]):
        read_by_all = floor is not None and following.base_offset <= floor and batch.written <= now - grace
        too_old = rule.retention is not None and batch.written <= now - rule.retention
        if not (read_by_all or too_old):
            break
        gone.append(batch)
    return gone


@dataclass
class GroupOffsets:
    """Each group's committed offset for each topic partition, read from Tansu's files; a file is read again only
    when it changed."""

    committed: dict[str, tuple[datetime, int]] = field(default_factory=dict)

    def refresh(self, client: Minio, bucket: str) -> bool:
        """Reads the files that changed; True when any did."""
        seen, changed = set(), False
        for obj in client.list_objects(bucket, prefix=GROUPS_PREFIX, recursive=True):
            if "/offsets/" not in obj.object_name or not obj.object_name.endswith(".json"):
                continue
            seen.add(obj.object_name)
            known = self.committed.get(obj.object_name)
            if known is not None and known[0] == obj.last_modified:
                continue
            response = client.get_object(bucket, obj.object_name)
            try:
                offset = int(json.loads(response.read())["offset"])
            finally:
                response.close()
                response.release_conn()
            self.committed[obj.object_name] = (obj.last_modified, offset)
            changed = True
        for gone in set(self.committed) - seen:
            del self.committed[gone]
        return changed

    def floor(self, topic: str, partition: int, now: datetime, retention: timedelta | None) -> int | None:
        """The lowest offset committed on the partition by a group still reading it; None when no group is."""
        suffix = f"/offsets/{topic}/partitions/{partition:010d}.json"
        offsets = [
            offset for name, (written, offset) in self.committed.items()
            if name.endswith(suffix) and (retention is None or written > now - retention)
        ]  # fmt: skip
        return min(offsets) if offsets else None


class BrokerRetention:
    """The broker bucket's retention by the topics' Kafka configs. One pass cuts every partition of ``rules``'
    topics by ``expired`` and lists only what it deletes (and a page past it). A partition a group reads is looked
    at when some group committed since the last pass; one no group reads, only when its oldest batch comes of
    age (or on the first age pass)."""

    def __init__(self, client: Minio, bucket: str, rules: dict[str, Rule], partitions: int,
                 grace: timedelta) -> None:  # fmt: skip
        self.client, self.bucket, self.rules, self.partitions, self.grace = client, bucket, rules, partitions, grace
        self.groups = GroupOffsets()
        # Batch objects deleted, by topic: the benchmarks add them back to count what was produced.
        self.deleted: Counter[str] = Counter()
        # This thread's own CPU, for the benchmarks: it runs in a process that does other work.
        self.cpu_seconds = 0.0
        # Batches every group has read but still in their grace: the next pass cuts them, moved or not.
        self.waiting = False
        # When a partition no group reads next has a batch past its retention: its oldest kept batch's age says.
        self.age_due: dict[tuple[str, int], datetime] = {}

    @classmethod
    def for_settings(cls, client: Minio, bucket: str, settings: Settings) -> "BrokerRetention":
        rules = {name: rule_of(config) for name, config in topic_configs(settings).items()}
        grace = timedelta(seconds=settings.broker_retention_grace_seconds)
        return cls(client, bucket, rules, settings.topic_partitions, grace)

    def keep_cutting(self, stopping: threading.Event) -> None:
        """Passes until ``stopping`` is set; a pass that fails (the store or broker restarting) is tried again."""
        passes = 0
        while not stopping.wait(PASS_SECONDS):
            started = time.thread_time()
            try:
                self.run_once(by_age=passes % AGE_PASS_EVERY == 0)
            except Exception as exc:  # noqa: BLE001 - whatever it was, the next pass starts afresh
                log.warning("broker retention: pass failed (%s: %s); trying again", type(exc).__name__, exc)
            passes += 1
            self.cpu_seconds += time.thread_time() - started

    def run_once(self, now: datetime | None = None, by_age: bool = True) -> int:
        """Deletes what may go; ``by_age`` False skips the partitions no group moved on (the age rule then waits
        for the next pass that has it). Returns how many batch objects it deleted."""
        now = now or datetime.now(timezone.utc)
        moved = self.groups.refresh(self.client, self.bucket)
        if not (moved or by_age or self.waiting):
            return 0
        deleted, self.waiting = 0, False
        for topic, rule in self.rules.items():
            for partition in range(self.partitions):
                floor = self.groups.floor(topic, partition, now, rule.retention)
                if floor is None and not (by_age and rule.retention is not None
                                          and now >= self.age_due.get((topic, partition), now)):  # fmt: skip
                    continue
                deleted += self.cut(topic, partition, floor, rule, now)
        return deleted

    def cut(self, topic: str, partition: int, floor: int | None, rule: Rule, now: datetime) -> int:
        listed = self.listed(topic, partition, floor, rule, now)
        gone = expired(listed, floor, rule, now, self.grace)
        kept = listed[len(gone):]
        self.waiting |= floor is not None and len(kept) > 1 and kept[1].base_offset <= floor
        if kept and rule.retention is not None:
            self.age_due[(topic, partition)] = kept[0].written + rule.retention
        if not gone:
            return 0
        errors = list(self.client.remove_objects(self.bucket, (DeleteObject(b.key) for b in gone)))
        for error in errors:
            log.warning("broker retention: could not delete %s: %s", error.name, error.message)
        log.info("broker retention: %s[%d] cut %d batch objects below offset %d",
                 topic, partition, len(gone) - len(errors), gone[-1].base_offset)  # fmt: skip
        self.deleted[topic] += len(gone) - len(errors)
        return len(gone) - len(errors)

    def listed(self, topic: str, partition: int, floor: int | None, rule: Rule, now: datetime) -> list[Batch]:
        """The partition's batches, oldest first, up to the first two that must stay (the listing is the cost
        that grows with the partition, so it stops there)."""
        batches, kept = [], 0
        if rule.compacted:
            return batches
        for obj in self.client.list_objects(self.bucket, prefix=batch_prefix(topic, partition), recursive=True):
            name = obj.object_name.rsplit("/", 1)[-1]
            batch = Batch(obj.object_name, int(name.split(".", 1)[0]), obj.last_modified)
            batches.append(batch)
            consumed = floor is not None and batch.base_offset <= floor and batch.written <= now - self.grace
            old = rule.retention is not None and batch.written <= now - rule.retention
            kept = 0 if consumed or old else kept + 1
            if kept >= 2:
                break
        return batches
