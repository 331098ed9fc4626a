"""The index replica and its query parameters, without Kafka."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest

from media.phash import ALGORITHM, ALGORITHM_VERSION
from schemas.errors import InvalidParameter
from schemas.messages import PHashRecord
from adapters.similar_query import SimilarQuery, parse_query
from sink.similar import SimilarityReplica
from test_phash_index import format_1_snapshot


def record(
    job_id: str, phash: str, sha256: str = "s", *, mirrored: str = "0" * 16, version: int = ALGORITHM_VERSION,
    owner: str | None = None,
):
    return PHashRecord(
        job_id=job_id, name=f"{job_id}.jpg", phash=phash, mirrored_phash=mirrored, algorithm=ALGORITHM,
        algorithm_version=version, sha256=sha256, width=10, height=10, hashed_at=datetime(2026, 1, 1, tzinfo=UTC),
        owner=owner,
    )  # fmt: skip


def replica_of(*records: PHashRecord) -> SimilarityReplica:
    replica = SimilarityReplica()
    for each in records:
        replica.apply(each)
    return replica


def test_redelivered_record_is_indexed_once():
    replica = SimilarityReplica()
    assert replica.apply(record("a", "00000000000000ff"))
    assert not replica.apply(record("a", "00000000000000ff"))
    assert len(replica.index) == 1


def test_hash_of_another_algorithm_version_is_never_indexed():
    replica = replica_of(record("old", "00000000000000ff", version=ALGORITHM_VERSION + 1))
    assert len(replica.index) == 0


def test_search_sorts_by_distance_excludes_the_query_job_and_flags_exact_duplicates():
    replica = replica_of(
        record("query", "00000000000000ff", "same"), record("twin", "00000000000000ff", "same"),
        record("near", "00000000000000f0", "other"), record("far", "ffffffffffffff00", "other"),
    )  # fmt: skip
    found = replica.search(SimilarQuery("00000000000000ff", 8, 10, sha256="same", exclude="query"))
    assert [(r.job_id, r.distance, r.exact_duplicate) for r in found.results] == [("twin", 0, True), ("near", 4, False)]


def test_mirror_search_keeps_the_closer_of_the_two_matches():
    replica = replica_of(record("mirror-copy", "ff00000000000000"), record("plain", "00000000000000ff"))
    query = SimilarQuery("00000000000000ff", 2, 10, mirror=True, mirrored_phash="ff00000000000001")
    found = {r.job_id: r for r in replica.search(query).results}
    assert (found["mirror-copy"].distance, found["mirror-copy"].mirrored) == (1, True)
    assert (found["plain"].distance, found["plain"].mirrored) == (0, False)


def test_limit_applies_after_merging():
    replica = replica_of(*(record(f"j{i}", f"{i:016x}") for i in range(8)))
    assert len(replica.search(SimilarQuery("0000000000000000", 32, 3)).results) == 3


def test_a_search_finds_only_its_owners_images_however_many_others_are_nearer():
    replica = replica_of(
        *(record(f"theirs-{i}", "00000000000000ff", owner="key-b") for i in range(5)),
        record("mine", "00000000000000fe", owner="key-a"), record("nobodys", "00000000000000ff"),
    )  # fmt: skip
    assert [r.job_id for r in replica.search(SimilarQuery("00000000000000ff", 8, 1, owner="key-a")).results] == ["mine"]
    assert [r.job_id for r in replica.search(SimilarQuery("00000000000000ff", 8, 10)).results] == ["nobodys"]
    assert replica.search(SimilarQuery("00000000000000ff", 8, 10, owner="key-c")).results == []
    mirror = SimilarQuery("ff00000000000000", 8, 10, mirror=True, mirrored_phash="00000000000000ff", owner="key-a")
    assert [(r.job_id, r.mirrored) for r in replica.search(mirror).results] == [("mine", True)]


def test_snapshot_round_trip_keeps_hashes_info_owners_and_offsets():
    replica = replica_of(
        record("a", "00000000000000ff", "aa" * 32, owner="key-a"), record("b\nc", "0f0f0f0f0f0f0f0f", "bb" * 32),
        record("d", "00000000000000ff", "cc" * 32, owner="key-b"),
    )  # fmt: skip
    replica.offsets = {0: 5, 3: 9}
    restored = SimilarityReplica.restore(replica.snapshot())
    assert restored.offsets == {0: 5, 3: 9}
    assert restored.info == replica.info
    for owner in ("key-a", "key-b", None):
        query = SimilarQuery("00000000000000ff", 32, 10, owner=owner)
        assert restored.search(query) == replica.search(query)
        assert len(restored.search(query).results) == 1


def test_a_snapshot_from_before_owners_restores_its_images_as_ownerless():
    replica = replica_of(record("a", "00000000000000ff", "aa" * 32))
    replica.offsets = {0: 1}
    with np.load(io.BytesIO(replica.snapshot())) as arrays:
        old = {name: arrays[name] for name in arrays.files}
    old["index"] = np.frombuffer(format_1_snapshot(["a"], [0xFF]), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **old)
    restored = SimilarityReplica.restore(out.getvalue())
    assert [r.job_id for r in restored.search(SimilarQuery("00000000000000ff", 0, 10)).results] == ["a"]
    assert restored.search(SimilarQuery("00000000000000ff", 0, 10, owner="key-a")).results == []
    assert restored.apply(record("b", "00000000000000ff", owner="key-a"))
    assert [r.job_id for r in restored.search(SimilarQuery("00000000000000ff", 0, 10, owner="key-a")).results] == ["b"]


def test_parse_query_defaults_and_internal_parameters():
    query = parse_query({"phash": "F06830CA9F1E3E90".lower(), "transforms": "mirror", "mirrored_phash": "0" * 16,
                         "owner": "0123456789ab"})  # fmt: skip
    assert (query.max_distance, query.limit, query.mirror, query.owner) == (10, 20, True, "0123456789ab")
    assert parse_query(query.as_params()) == query


@pytest.mark.parametrize(
    "params",
    [{"phash": "F06830CA9F1E3E90"}, {"phash": "f06830ca9f1e3e90", "max_distance": "eight"},
     {"phash": "f06830ca9f1e3e90", "limit": "1001"}, {"phash": "f06830ca9f1e3e90", "mirrored_phash": "zz"}],
)  # fmt: skip
def test_parse_query_rejections(params):
    with pytest.raises(InvalidParameter):
        parse_query(params)
