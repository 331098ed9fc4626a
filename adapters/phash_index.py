"""Exact near-duplicate search over 64-bit perceptual hashes, in memory.

Multi-index hashing: the 64 bits are cut into four 16-bit keys, and each key has a table listing the
positions of all hashes sorted by that key, with bucket offsets (a CSR layout, no sorted keys stored).
Pigeonhole: if two hashes differ in at most r = 4s + a bits (0 <= a < 4), then one of keys 0..a
differs in at most s bits or one of keys a+1..3 in at most s-1 bits. A query probes exactly those
neighbour buckets and verifies the candidates with a popcount, so it returns what a brute-force scan
returns. When the candidates are too many for probing to pay (large radii, small indexes), it scans.

New hashes go to a small tail that every query scans, so they are searchable at once; a full tail is
merged into the tables.

Every hash has an owner (the API key that made its job, or None), and a query finds only its owner's
hashes: the filter runs before the nearest are picked, so a busy owner never crowds out another's
matches. Owners are kept as a list of the distinct ones plus a uint32 ordinal per hash. Memory is 8
bytes per hash, 4 x 4 bytes of positions and 4 of owner ordinal, 28 bytes in all, plus the fixed
offsets and tail; the external ids live outside these arrays.

A removed hash keeps its place in the tables with an owner ordinal no owner has, so no query finds it;
the next snapshot leaves it out, and an index restored from it no longer holds its place.

Not thread-safe: add, remove and query must not run concurrently.
"""

import io
import json
from collections.abc import Sequence

import numpy as np

from schemas.errors import InvalidParameter

MAX_DISTANCE = 32

_TABLES = 4
_KEY_BITS = 16
_BUCKETS = 1 << _KEY_BITS
_KEY_MASK = _BUCKETS - 1
_HASH_LIMIT = 1 << 64
# Every 16-bit XOR mask ordered by popcount, so the masks of weight <= s are a prefix.
_MASKS = np.array(sorted(range(_BUCKETS), key=int.bit_count), dtype=np.int64)
_MASKS_UP_TO_WEIGHT = np.cumsum(np.bincount([m.bit_count() for m in range(_BUCKETS)]))
# Verifying a candidate is a random read, a scanned hash a sequential one: probing pays only while
# candidates and probes stay well below the index size (calibrated with bench/phash_index.py).
_SCAN_COST_RATIO = 24
# Format 1 had no owners: its hashes restore as ownerless (None).
_SNAPSHOT_FORMAT = 2
_FORMATS = (1, _SNAPSHOT_FORMAT)
# The owner ordinal of removed hashes: the owners list never grows this long.
_REMOVED = np.uint32(2**32 - 1)

Id = int | str
Owner = str | None


class PHashIndex:
    """Hashes under external ids (ints or strs, such as job ids) and owners, each id at a dense position."""

    def __init__(self, algorithm: str, tail_limit: int = 65536) -> None:
        # The hash algorithm and its version (e.g. "dct-phash-8/imagehash-4.3@1"): hashes of another are
        # not comparable, so callers check it before adding or querying, and snapshots keep it.
        self.algorithm = algorithm
        self._tail = np.empty(tail_limit, dtype=np.uint64)
        self._tail_owners = np.empty(tail_limit, dtype=np.uint32)
        self._tail_len = 0
        self._hashes = np.empty(0, dtype=np.uint64)
        self._owner_ordinals = np.empty(0, dtype=np.uint32)
        self._owners: list[Owner] = []
        self._ordinal_of: dict[Owner, int] = {}
        self._positions, self._offsets = _build_tables(self._hashes)
        self._ids: list[Id] = []
        self._position_of: dict[Id, int] = {}

    @classmethod
    def build(
        cls, algorithm: str, ids: Sequence[Id], hashes: np.ndarray, owners: Sequence[Owner] | None = None
    ) -> "PHashIndex":
        """An index of many records at once, in their order, without going through the tail; every hash
        ownerless unless ``owners`` gives each one's."""
        if owners is None:
            return cls._from_columns(algorithm, ids, hashes, [None], np.zeros(len(ids), dtype=np.uint32))
        for owner in owners:
            _check_owner(owner)
        distinct = list(dict.fromkeys(owners))
        ordinal_of = {owner: ordinal for ordinal, owner in enumerate(distinct)}
        ordinals = np.array([ordinal_of[owner] for owner in owners], dtype=np.uint32)
        return cls._from_columns(algorithm, ids, hashes, distinct, ordinals)

    @classmethod
    def _from_columns(
        cls, algorithm: str, ids: Sequence[Id], hashes: np.ndarray, owners: list[Owner], ordinals: np.ndarray
    ) -> "PHashIndex":
        if not len(ids) == len(hashes) == len(ordinals):
            raise ValueError(f"{len(ids)} ids for {len(hashes)} hashes and {len(ordinals)} owners")
        if len(ordinals) and int(ordinals.max()) >= len(owners):
            raise ValueError("an owner ordinal is past the owners list")
        index = cls(algorithm)
        index._owners = list(owners)
        index._ordinal_of = {owner: ordinal for ordinal, owner in enumerate(index._owners)}
        if len(index._ordinal_of) != len(index._owners):
            raise ValueError("owners are not unique")
        index._owner_ordinals = np.array(ordinals, dtype=np.uint32)
        index._ids = list(ids)
        for id_ in index._ids:
            _check_id(id_)
        index._position_of = {id_: position for position, id_ in enumerate(index._ids)}
        if len(index._position_of) != len(index._ids):
            raise ValueError("ids are not unique")
        index._hashes = np.array(hashes, dtype=np.uint64)
        index._positions, index._offsets = _build_tables(index._hashes)
        return index

    def add(self, id_: Id, hash_: int, owner: Owner = None) -> None:
        """Index a hash under an id and its owner; adding an id again with the same hash and owner does nothing."""
        _check_id(id_)
        _check_hash(hash_)
        _check_owner(owner)
        position = self._position_of.get(id_)
        if position is not None:
            if self._hash_at(position) != hash_ or self._owner_at(position) != owner:
                raise ValueError(f"id {id_!r} is already indexed with another hash or owner")
            return
        if owner not in self._ordinal_of:
            self._ordinal_of[owner] = len(self._owners)
            self._owners.append(owner)
        self._tail_owners[self._tail_len] = self._ordinal_of[owner]
        self._tail[self._tail_len] = hash_
        self._tail_len += 1
        self._position_of[id_] = len(self._ids)
        self._ids.append(id_)
        if self._tail_len == len(self._tail):
            self._merge()

    def remove(self, id_: Id) -> bool:
        """Take the id's hash out of every search; False when the id is not indexed."""
        position = self._position_of.pop(id_, None)
        if position is None:
            return False
        merged = len(self._hashes)
        if position < merged:
            self._owner_ordinals[position] = _REMOVED
        else:
            self._tail_owners[position - merged] = _REMOVED
        return True

    def query(self, hash_: int, max_distance: int, limit: int, owner: Owner = None) -> list[tuple[Id, int, int]]:
        """(id, hash, distance) of ``owner``'s nearest hashes within max_distance, by distance then insertion."""
        _check_hash(hash_)
        if not 0 <= max_distance <= MAX_DISTANCE:
            raise InvalidParameter(f"max_distance must be between 0 and {MAX_DISTANCE}, got {max_distance}")
        if limit < 1:
            raise InvalidParameter(f"limit must be at least 1, got {limit}")
        ordinal = self._ordinal_of.get(owner)
        if ordinal is None:
            return []
        query = np.uint64(hash_)
        positions, distances = self._search_tables(query, max_distance)
        mine = self._owner_ordinals[positions] == ordinal
        tail_positions, tail_distances = _scan(self._tail[: self._tail_len], query, max_distance)
        tail_mine = self._tail_owners[tail_positions] == ordinal
        positions = np.concatenate((positions[mine], tail_positions[tail_mine] + len(self._hashes)))
        distances = np.concatenate((distances[mine], tail_distances[tail_mine]))
        # Positions are ascending, so a stable sort breaks distance ties by insertion order.
        nearest = np.argsort(distances, kind="stable")[:limit]
        return [
            (self._ids[position], self._hash_at(position), distance)
            for position, distance in zip(positions[nearest].tolist(), distances[nearest].tolist())
        ]

    def __len__(self) -> int:
        return len(self._position_of)

    @property
    def nbytes(self) -> int:
        """Bytes held by the search arrays and owner ordinals; the ids and the owners list are not counted."""
        return (self._hashes.nbytes + self._positions.nbytes + self._offsets.nbytes + self._tail.nbytes
                + self._owner_ordinals.nbytes + self._tail_owners.nbytes)  # fmt: skip

    def snapshot(self) -> bytes:
        """Every record not removed, in insertion order; the tables are rebuilt on restore, not stored."""
        ordinals = np.concatenate((self._owner_ordinals, self._tail_owners[: self._tail_len]))
        kept = ordinals != _REMOVED
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format=np.array(_SNAPSHOT_FORMAT),
            algorithm=np.array(self.algorithm),
            hashes=np.concatenate((self._hashes, self._tail[: self._tail_len]))[kept],
            # JSON keeps each id's type (int or str) and any character.
            ids=np.frombuffer(json.dumps([i for i, k in zip(self._ids, kept.tolist()) if k]).encode(), dtype=np.uint8),
            owners=np.frombuffer(json.dumps(self._owners).encode(), dtype=np.uint8),
            owner_ordinals=ordinals[kept],
        )
        return buffer.getvalue()

    @classmethod
    def restore(cls, snapshot: bytes) -> "PHashIndex":
        with np.load(io.BytesIO(snapshot), allow_pickle=False) as arrays:
            if int(arrays["format"]) not in _FORMATS:
                raise ValueError(f"unknown snapshot format {int(arrays['format'])}")
            ids = json.loads(arrays["ids"].tobytes())
            if int(arrays["format"]) == 1:
                return cls.build(str(arrays["algorithm"]), ids, arrays["hashes"])
            owners = json.loads(arrays["owners"].tobytes())
            return cls._from_columns(str(arrays["algorithm"]), ids, arrays["hashes"], owners, arrays["owner_ordinals"])

    def _hash_at(self, position: int) -> int:
        merged = len(self._hashes)
        return int(self._hashes[position] if position < merged else self._tail[position - merged])

    def _owner_at(self, position: int) -> Owner:
        merged = len(self._hashes)
        ordinals = self._owner_ordinals if position < merged else self._tail_owners
        return self._owners[int(ordinals[position if position < merged else position - merged])]

    def _merge(self) -> None:
        tail = self._tail[: self._tail_len]
        self._positions, self._offsets = _merge_tables(self._positions, self._offsets, tail)
        self._hashes = np.concatenate((self._hashes, tail))
        self._owner_ordinals = np.concatenate((self._owner_ordinals, self._tail_owners[: self._tail_len]))
        self._tail_len = 0

    def _search_tables(self, query: np.uint64, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
        count = len(self._hashes)
        weights = _table_weights(max_distance)
        if _probe_count(weights) * _SCAN_COST_RATIO > count:
            return _scan(self._hashes, query, max_distance)
        tables, keys = _probes(int(query), weights)
        starts = self._offsets[tables, keys]
        lengths = self._offsets[tables, keys + 1] - starts
        candidates = int(lengths.sum())
        if (candidates + len(keys)) * _SCAN_COST_RATIO > count:
            return _scan(self._hashes, query, max_distance)
        flat = _concat_ranges(starts + tables * count, lengths, candidates)
        found = self._positions.reshape(-1)[flat]
        distances = np.bitwise_count(self._hashes[found] ^ query)
        near = distances <= max_distance
        # A hash near in several keys is a candidate of several tables.
        positions, first = np.unique(found[near], return_index=True)
        return positions.astype(np.int64), distances[near][first]


def _check_id(id_: Id) -> None:
    # Exactly int or str: snapshots keep ids as JSON, which would turn others into something else.
    if type(id_) not in (int, str):
        raise TypeError(f"an id is an int or a str, got {type(id_).__name__}")


def _check_owner(owner: Owner) -> None:
    # Snapshots keep owners as JSON, like ids.
    if owner is not None and type(owner) is not str:
        raise TypeError(f"an owner is a str or None, got {type(owner).__name__}")


def _check_hash(hash_: int) -> None:
    if not 0 <= hash_ < _HASH_LIMIT:
        raise InvalidParameter(f"a hash is a 64-bit unsigned integer, got {hash_}")


def _keys(hashes: np.ndarray, table: int) -> np.ndarray:
    # A little-endian uint64 is four uint16 keys, the lowest bits first: a strided view, no arithmetic.
    return hashes.astype("<u8", copy=False).view("<u2")[table::_TABLES]


def _build_tables(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per table, the positions sorted by key (stable, so ascending within a bucket) and bucket offsets."""
    if len(hashes) >= 1 << 32:
        raise ValueError("an index holds fewer than 2**32 hashes")
    positions = np.empty((_TABLES, len(hashes)), dtype=np.uint32)
    offsets = np.zeros((_TABLES, _BUCKETS + 1), dtype=np.int64)
    for table in range(_TABLES):
        keys = _keys(hashes, table)
        positions[table] = np.argsort(keys, kind="stable")
        np.cumsum(np.bincount(keys, minlength=_BUCKETS), out=offsets[table, 1:])
    return positions, offsets


def _merge_tables(positions: np.ndarray, offsets: np.ndarray, tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tables with the tail's hashes appended: O(n) copies instead of a full re-sort."""
    merged_count = positions.shape[1]
    total = merged_count + len(tail)
    if total >= 1 << 32:
        raise ValueError("an index holds fewer than 2**32 hashes")
    merged = np.empty((_TABLES, total), dtype=np.uint32)
    merged_offsets = np.empty_like(offsets)
    for table in range(_TABLES):
        keys = _keys(tail, table)
        order = np.argsort(keys, kind="stable")
        # Tail positions are later than every merged one, so they go at the end of their buckets.
        destinations = offsets[table, keys[order].astype(np.int64) + 1] + np.arange(len(order))
        is_merged = np.ones(total, dtype=bool)
        is_merged[destinations] = False
        # Through a row view, boolean assignment takes numpy's fast path (mixed with an integer index
        # it goes through a full fancy index).
        row = merged[table]
        row[is_merged] = positions[table]
        row[destinations] = order + merged_count
        merged_offsets[table, 0] = 0
        merged_offsets[table, 1:] = offsets[table, 1:] + np.cumsum(np.bincount(keys, minlength=_BUCKETS))
    return merged, merged_offsets


def _table_weights(max_distance: int) -> list[int]:
    """Per table, the most bits a key may differ by; negative where the table need not be probed."""
    weight, wider = divmod(max_distance, _TABLES)
    return [weight if table <= wider else weight - 1 for table in range(_TABLES)]


def _probe_count(weights: list[int]) -> int:
    return sum(int(_MASKS_UP_TO_WEIGHT[weight]) for weight in weights if weight >= 0)


def _probes(query: int, weights: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Table numbers and keys of the buckets that can hold a hash within the weights of the query's keys."""
    tables = []
    keys = []
    for table, weight in enumerate(weights):
        if weight < 0:
            continue
        masks = _MASKS[: _MASKS_UP_TO_WEIGHT[weight]]
        tables.append(np.full(len(masks), table))
        keys.append(masks ^ ((query >> (table * _KEY_BITS)) & _KEY_MASK))
    return np.concatenate(tables), np.concatenate(keys)


def _concat_ranges(starts: np.ndarray, lengths: np.ndarray, total: int) -> np.ndarray:
    """The indices start..start+length-1 of every range, one after the other."""
    range_starts = np.cumsum(lengths) - lengths
    return np.repeat(starts - range_starts, lengths) + np.arange(total)


def _scan(hashes: np.ndarray, query: np.uint64, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    distances = np.bitwise_count(hashes ^ query)
    positions = np.flatnonzero(distances <= max_distance)
    return positions, distances[positions]
