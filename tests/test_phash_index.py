import io
import json
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import phash_index
from adapters.phash_index import MAX_DISTANCE, PHashIndex
from schemas.errors import InvalidParameter

ALGORITHM = "dct-phash-8/imagehash-4.3@1"
HASHES = st.integers(min_value=0, max_value=2**64 - 1)
# Few bits set: the masks that turn a cluster centre into its members, or an indexed hash into a query.
SPARSE_MASKS = st.lists(st.integers(min_value=0, max_value=63), max_size=12).map(
    lambda bits: sum(1 << bit for bit in set(bits))
)


@st.composite
def clustered_hashes(draw) -> list[int]:
    centres = draw(st.lists(HASHES, min_size=1, max_size=6))
    return [draw(st.sampled_from(centres)) ^ draw(SPARSE_MASKS) for _ in range(draw(st.integers(0, 300)))]


@st.composite
def queries(draw, hashes: list[int]) -> list[int]:
    near = [draw(st.sampled_from(hashes)) ^ draw(SPARSE_MASKS) for _ in range(3)] if hashes else []
    return near + draw(st.lists(HASHES, min_size=1, max_size=2))


def brute_force(hashes: list[int], query: int, max_distance: int, limit: int) -> list[tuple[str, int, int]]:
    matches = [
        (f"job-{position}", hash_, (hash_ ^ query).bit_count())
        for position, hash_ in enumerate(hashes)
        if (hash_ ^ query).bit_count() <= max_distance
    ]
    return sorted(matches, key=lambda match: match[2])[:limit]


def indexed(hashes: list[int], tail_limit: int) -> PHashIndex:
    index = PHashIndex(ALGORITHM, tail_limit=tail_limit)
    for position, hash_ in enumerate(hashes):
        index.add(f"job-{position}", hash_)
    return index


# Small indexes are cheaper to scan, so the planner would never probe them: a ratio of 0 forces probing.
SCAN_COST_RATIOS = pytest.mark.parametrize("scan_cost_ratio", [0, phash_index._SCAN_COST_RATIO])


def check_against_brute_force(data, hashes: list[int], scan_cost_ratio: int) -> None:
    index = indexed(hashes, data.draw(st.integers(1, 64), label="tail_limit"))
    with mock.patch.object(phash_index, "_SCAN_COST_RATIO", scan_cost_ratio):
        for query in data.draw(queries(hashes), label="queries"):
            max_distance = data.draw(st.integers(0, MAX_DISTANCE), label="max_distance")
            limit = data.draw(st.integers(1, 400), label="limit")
            assert index.query(query, max_distance, limit) == brute_force(hashes, query, max_distance, limit)


@SCAN_COST_RATIOS
@settings(max_examples=60, deadline=None)
@given(data=st.data(), hashes=st.lists(HASHES, max_size=300))
def test_random_hashes_query_like_brute_force(scan_cost_ratio, data, hashes):
    check_against_brute_force(data, hashes, scan_cost_ratio)


@SCAN_COST_RATIOS
@settings(max_examples=60, deadline=None)
@given(data=st.data(), hashes=clustered_hashes())
def test_clustered_hashes_query_like_brute_force(scan_cost_ratio, data, hashes):
    check_against_brute_force(data, hashes, scan_cost_ratio)


OWNERS = [None, "key-a", "key-b"]


@SCAN_COST_RATIOS
@settings(max_examples=60, deadline=None)
@given(data=st.data(), hashes=clustered_hashes())
def test_a_query_finds_only_its_owners_hashes_like_brute_force(scan_cost_ratio, data, hashes):
    owners = [data.draw(st.sampled_from(OWNERS), label="owner") for _ in hashes]
    index = PHashIndex(ALGORITHM, tail_limit=data.draw(st.integers(1, 64), label="tail_limit"))
    for position, (hash_, owner) in enumerate(zip(hashes, owners)):
        index.add(f"job-{position}", hash_, owner)
    with mock.patch.object(phash_index, "_SCAN_COST_RATIO", scan_cost_ratio):
        for query in data.draw(queries(hashes), label="queries"):
            owner = data.draw(st.sampled_from([*OWNERS, "key-unknown"]), label="query owner")
            max_distance = data.draw(st.integers(0, MAX_DISTANCE), label="max_distance")
            limit = data.draw(st.integers(1, 50), label="limit")
            # Brute force over every hash, keeping the owner's: ids keep the positions among all hashes.
            expected = [m for m in brute_force(hashes, query, max_distance, len(hashes))
                        if owners[int(m[0].removeprefix("job-"))] == owner][:limit]  # fmt: skip
            assert index.query(query, max_distance, limit, owner) == expected


def test_large_clustered_index_queries_like_numpy_brute_force():
    rng = np.random.default_rng(7)
    centres = rng.integers(0, 2**64, 200, dtype=np.uint64)
    noise = rng.integers(0, 2**64, (4, 30_000), dtype=np.uint64)
    hashes = centres[rng.integers(0, len(centres), 30_000)] ^ np.bitwise_and.reduce(noise)
    index = PHashIndex.build(ALGORITHM, list(range(len(hashes))), hashes)
    for query in hashes[:40].tolist():
        for max_distance in (0, 4, 8, 12, 20):
            distances = np.bitwise_count(hashes ^ np.uint64(query))
            positions = np.flatnonzero(distances <= max_distance)
            expected = positions[np.argsort(distances[positions], kind="stable")][:100].tolist()
            assert [id_ for id_, _, _ in index.query(query, max_distance, 100)] == expected


def test_new_hashes_are_searchable_at_once_and_after_merges():
    index = PHashIndex(ALGORITHM, tail_limit=4)
    for position in range(11):
        index.add(position, position * 0x0101010101010101)
        assert index.query(position * 0x0101010101010101, 0, 10)[0] == (position, position * 0x0101010101010101, 0)
    assert len(index) == 11
    assert [id_ for id_, _, _ in index.query(0, MAX_DISTANCE, 100)] == [0, 1, 2, 4, 8, 3, 5, 6, 9, 10, 7]


def test_ties_are_broken_by_insertion_order():
    index = PHashIndex(ALGORITHM, tail_limit=3)
    for id_ in ["c", "a", "d", "b", "e"]:
        index.add(id_, 0xFF)
    assert [id_ for id_, _, _ in index.query(0xFF, 0, 10)] == ["c", "a", "d", "b", "e"]
    assert [id_ for id_, _, _ in index.query(0xFF, 0, 2)] == ["c", "a"]


def test_adding_an_id_again_with_its_hash_is_a_no_op():
    index = PHashIndex(ALGORITHM, tail_limit=2)
    for _ in range(3):
        index.add("job-1", 0xABC)
        index.add("job-2", 0xABD)
    assert len(index) == 2
    assert index.query(0xABC, 1, 10) == [("job-1", 0xABC, 0), ("job-2", 0xABD, 1)]


def test_adding_an_id_again_with_another_hash_or_owner_is_refused():
    index = PHashIndex(ALGORITHM, tail_limit=2)
    index.add("job-1", 0xABC, "key-a")
    for _ in range(2):
        with pytest.raises(ValueError, match="another hash"):
            index.add("job-1", 0xABD, "key-a")
        with pytest.raises(ValueError, match="or owner"):
            index.add("job-1", 0xABC, "key-b")
        index.add("job-2", 0xABC)
    assert index.query(0xABC, 0, 10, "key-a") == [("job-1", 0xABC, 0)]


@pytest.mark.parametrize("tail_limit", [1, 3, 1000])
def test_snapshot_restores_an_equal_index(tail_limit):
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, 500, dtype=np.uint64).tolist()
    index = PHashIndex(ALGORITHM, tail_limit=tail_limit)
    for position, hash_ in enumerate(hashes):
        index.add(position if position % 2 else f"job-\x00\n\u00e9-{position}", hash_, OWNERS[position % 3])
    restored = PHashIndex.restore(index.snapshot())
    assert restored.algorithm == ALGORITHM
    assert len(restored) == len(index)
    for query in hashes[::25]:
        for owner in OWNERS:
            assert restored.query(query, 32, 1000, owner) == index.query(query, 32, 1000, owner)
    restored.add(1, hashes[1], OWNERS[1])
    assert len(restored) == len(index)


def format_1_snapshot(ids: list, hashes: list[int]) -> bytes:
    """A snapshot as the index wrote them before it kept owners."""
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array(1), algorithm=np.array(ALGORITHM), hashes=np.array(hashes, dtype=np.uint64),
             ids=np.frombuffer(json.dumps(ids).encode(), dtype=np.uint8))  # fmt: skip
    return buffer.getvalue()


def test_a_snapshot_without_owners_restores_every_hash_as_ownerless():
    restored = PHashIndex.restore(format_1_snapshot(["a", 7], [0xFF, 0xFE]))
    assert restored.query(0xFF, 1, 10) == [("a", 0xFF, 0), (7, 0xFE, 1)]
    assert restored.query(0xFF, 1, 10, "key-a") == []
    restored.add("b", 0xFF, "key-a")
    assert PHashIndex.restore(restored.snapshot()).query(0xFF, 0, 10, "key-a") == [("b", 0xFF, 0)]


def test_build_keeps_each_hashes_owner():
    index = PHashIndex.build(ALGORITHM, ["a", "b", "c"], np.array([1, 1, 1], dtype=np.uint64), ["k", None, "k"])
    assert [id_ for id_, _, _ in index.query(1, 0, 10, "k")] == ["a", "c"]
    assert [id_ for id_, _, _ in index.query(1, 0, 10)] == ["b"]


def test_empty_index_round_trips_and_finds_nothing():
    restored = PHashIndex.restore(PHashIndex(ALGORITHM).snapshot())
    assert len(restored) == 0
    assert restored.query(0, MAX_DISTANCE, 10) == []


def test_build_refuses_duplicate_ids():
    with pytest.raises(ValueError, match="unique"):
        PHashIndex.build(ALGORITHM, ["a", "a"], np.array([1, 2], dtype=np.uint64))


def test_memory_is_28_bytes_per_hash_beyond_fixed_arrays():
    empty = PHashIndex(ALGORITHM)
    hashes = np.random.default_rng(5).integers(0, 2**64, 100_000, dtype=np.uint64)
    owners = [f"key-{i % 7}" for i in range(len(hashes))]
    assert PHashIndex.build(ALGORITHM, range(len(hashes)), hashes, owners).nbytes - empty.nbytes == 28 * len(hashes)


@pytest.mark.parametrize(
    ("hash_", "max_distance", "limit"),
    [(-1, 4, 10), (2**64, 4, 10), (0, -1, 10), (0, MAX_DISTANCE + 1, 10), (0, 4, 0)],
)
def test_out_of_range_queries_are_invalid_parameters(hash_, max_distance, limit):
    with pytest.raises(InvalidParameter):
        PHashIndex(ALGORITHM).query(hash_, max_distance, limit)


def test_ids_are_ints_or_strings_and_owners_strings_or_none():
    with pytest.raises(TypeError):
        PHashIndex(ALGORITHM).add(1.5, 0)
    with pytest.raises(TypeError):
        PHashIndex(ALGORITHM).add(1, 0, 5)
