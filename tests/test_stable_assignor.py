"""Partitions stay with their worker (adapters/stable_assignor.py): whatever the members held before, and whatever
their member ids, the same workers are dealt the same partitions; a worker alone holds them all."""

from __future__ import annotations

import uuid

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from faust.assignor.client_assignment import ClientAssignment, ClientMetadata

from adapters.stable_assignor import StableAssignor, dealt
from adapters.worker_app import create_app
from schemas.settings import Settings

TOPICS = ["medialane.jobs", "medialane.status"]


class Cluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}


def member(url: str, held: list[int]) -> ConsumerProtocolMemberMetadata:
    client = ClientMetadata(assignment=ClientAssignment(actives={t: held for t in TOPICS}, standbys={}), url=url,
                            changelog_distribution={})  # fmt: skip
    return ConsumerProtocolMemberMetadata(0, TOPICS, client.dumps())


def assign(**members: ConsumerProtocolMemberMetadata) -> dict[str, dict[str, list[int]]]:
    """Each URL's partitions by topic, the members joining under new ids."""
    assignor = create_app(Settings()).assignor
    assert isinstance(assignor, StableAssignor)
    ids = {f"member-{uuid.uuid4().hex[:6]}": url for url in members}
    result = assignor._perform_assignment(Cluster(), {mid: members[url] for mid, url in ids.items()})
    return {ids[mid]: {topic: sorted(parts) for topic, parts in answer.assignment} for mid, answer in result.items()}


def test_dealing():
    assert dealt([3, 1, 0, 2], 0, 2) == [0, 2] and dealt([0, 1, 2, 3], 1, 2) == [1, 3]
    assert dealt([0, 1, 2, 3], 0, 1) == [0, 1, 2, 3]


def test_the_same_workers_get_the_same_partitions_whatever_they_held_before():
    a, b = "http://127.0.0.1:7001", "http://127.0.0.1:7002"
    # As after `medialane up` stopped b first: a took everything over before it stopped too.
    first = assign(**{a: member(a, [0, 1, 2, 3]), b: member(b, [1, 3])})
    swapped = assign(**{a: member(a, [1, 3]), b: member(b, [0, 2])})
    fresh = assign(**{a: member(a, []), b: member(b, [])})
    expected = {a: {t: [0, 2] for t in TOPICS}, b: {t: [1, 3] for t in TOPICS}}
    assert first == swapped == fresh == expected


def test_a_worker_alone_holds_every_partition_and_gives_them_back():
    a, b = "http://127.0.0.1:7001", "http://127.0.0.1:7002"
    assert assign(**{b: member(b, [1, 3])}) == {b: {t: [0, 1, 2, 3] for t in TOPICS}}
    assert assign(**{a: member(a, []), b: member(b, [0, 1, 2, 3])})[b] == {t: [1, 3] for t in TOPICS}


def test_with_standby_copies_faust_keeps_its_own_assignor():
    assert not isinstance(create_app(Settings(table_standby_replicas=1)).assignor, StableAssignor)
