"""Removing hashes: from the index (adapters/phash_index.py) and from the replica on a deletion record, without Kafka."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime

import numpy as np
import pytest

from adapters.phash_index import PHashIndex
from adapters.similar_query import SimilarQuery
from schemas.deletion import JobDeleted
from sink.similar import SimilarityReplica
from test_phash_index import ALGORITHM, brute_force
from test_similar_replica import record, replica_of


def deletion(job_id: str) -> JobDeleted:
    return JobDeleted(job_id=job_id, owner="key-a", deleted_at=datetime(2026, 1, 2, tzinfo=UTC))


@pytest.mark.parametrize("tail_limit", [1, 7, 1000])
def test_removed_hashes_are_never_found_and_the_rest_are_as_before(tail_limit):
    rng = random.Random(tail_limit)
    centre = rng.getrandbits(64)
    hashes = [centre ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for _ in range(300)]
    index = PHashIndex(ALGORITHM, tail_limit=tail_limit)
    for position, hash_ in enumerate(hashes):
        index.add(f"job-{position}", hash_)
    removed = set(rng.sample(range(len(hashes)), 120))
    for position in removed:
        assert index.remove(f"job-{position}")
    assert not index.remove("job-0" if 0 in removed else "never-indexed")
    assert len(index) == len(hashes) - len(removed)
    kept = [h if p not in removed else None for p, h in enumerate(hashes)]
    expected = [m for m in brute_force([h if h is not None else 0 for h in kept], centre, 8, 1000)
                if int(m[0].split("-")[1]) not in removed]  # fmt: skip
    assert index.query(centre, 8, 1000) == expected
    restored = PHashIndex.restore(index.snapshot())
    assert len(restored) == len(index)
    assert {found[0] for found in restored.query(centre, 8, 1000)} == {found[0] for found in expected}


def test_a_removed_id_can_be_indexed_again_with_another_hash_and_owner():
    index = PHashIndex(ALGORITHM, tail_limit=2)
    index.add("a", 0xFF, "key-a")
    index.add("b", 0xF0, "key-a")  # the tail is merged
    assert index.remove("a")
    index.add("a", 0x0F, "key-b")
    assert index.query(0x0F, 0, 10, "key-b") == [("a", 0x0F, 0)]
    assert index.query(0xFF, 0, 10, "key-a") == []
    restored = PHashIndex.restore(index.snapshot())
    assert restored.query(0x0F, 0, 10, "key-b") == [("a", 0x0F, 0)] and len(restored) == 2


def test_the_replica_drops_a_deleted_jobs_hash_and_keeps_it_out_if_it_comes_later():
    replica = replica_of(record("a", "00000000000000ff", owner="key-a"), record("b", "00000000000000ff", owner="key-a"))
    query = SimilarQuery("00000000000000ff", 0, 10, owner="key-a")
    assert [r.job_id for r in replica.search(query).results] == ["a", "b"]
    assert replica.remove(deletion("a"))
    assert not replica.remove(deletion("a"))
    assert [r.job_id for r in replica.search(query).results] == ["b"]
    # The deletions topic is read beside medialane.phash: a deletion can overtake its hash.
    assert replica.remove(deletion("c"))
    assert not replica.apply(record("c", "00000000000000ff", owner="key-a"))
    assert not replica.apply(record("a", "00000000000000ff", owner="key-a"))
    assert [r.job_id for r in replica.search(query).results] == ["b"]


def test_the_snapshot_keeps_deletions_and_their_offsets():
    replica = replica_of(record("a", "00000000000000ff", "aa" * 32, owner="key-a"),
                         record("b", "00000000000000ff", "bb" * 32, owner="key-a"))  # fmt: skip
    replica.remove(deletion("a"))
    replica.remove(deletion("later"))
    replica.offsets, replica.deletion_offsets = {0: 2}, {1: 2}
    restored = SimilarityReplica.restore(replica.snapshot())
    assert restored.deleted == {"a", "later"} and restored.deletion_offsets == {1: 2} and restored.offsets == {0: 2}
    assert set(restored.info) == {"b"}
    assert not restored.apply(record("later", "00000000000000ff", owner="key-a"))
    query = SimilarQuery("00000000000000ff", 0, 10, owner="key-a")
    assert [r.job_id for r in restored.search(query).results] == ["b"]


def test_a_snapshot_from_before_deletions_restores_with_none():
    replica = replica_of(record("a", "00000000000000ff", "aa" * 32, owner="key-a"))
    with np.load(io.BytesIO(replica.snapshot())) as arrays:
        old = {name: arrays[name] for name in arrays.files if not name.startswith(("deleted", "deletion"))}
    out = io.BytesIO()
    np.savez(out, **old)
    restored = SimilarityReplica.restore(out.getvalue())
    assert restored.deleted == set() and restored.deletion_offsets == {} and set(restored.info) == {"a"}
