"""What a table's timer has to act on, kept as an index beside the table instead of read from the whole table
every tick: each key's next time and its partition, in a heap.

The stage that writes an entry tells the index when that entry is next due (or that it never is); after a
recovery (a start or a rebalance) the index is rebuilt from the table once (``WorkerApp.due_index``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any

# When a stored value is next due and its partition, or None when it never is.
DueOf = Callable[[bytes], tuple[float, int] | None]
# Replaced times stay in the heap until they surface; past this many the heap is built anew from the entries.
HEAP_SLACK = 1024


class DueIndex:
    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[float, int]] = {}
        # (time, key): entries replaced or removed since are skipped when they surface.
        self._heap: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def set(self, key: bytes, due: tuple[float, int] | None) -> None:
        if due is None:
            self._entries.pop(key, None)
            return
        self._entries[key] = due
        heapq.heappush(self._heap, (due[0], key))
        if len(self._heap) > 2 * len(self._entries) + HEAP_SLACK:
            self._replace(self._entries)

    def _replace(self, entries: dict[bytes, tuple[float, int]]) -> None:
        self._entries = entries
        self._heap = [(at, key) for key, (at, _) in entries.items()]
        heapq.heapify(self._heap)

    def pop_due(self, now: float, partitions: set[int]) -> list[bytes]:
        """The keys of ``partitions`` due at ``now``, removed from the index; those of other partitions stay."""
        found, kept = [], []
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            entry = self._entries.get(key)
            if entry is None or entry[0] != at:
                continue
            if entry[1] in partitions:
                del self._entries[key]
                found.append(key)
            else:
                kept.append((at, key))
        for item in kept:
            heapq.heappush(self._heap, item)
        return found


def indexed(parse: Callable[[bytes], Any], when: Callable[..., float | None], *args: Any) -> DueOf:
    """``when(entry, *args)`` over a stored value that ``parse`` reads, with the entry's ``partition``, as the index
    takes it: None where ``when`` says never or the entry names no partition."""

    def due_of(value: bytes) -> tuple[float, int] | None:
        entry = parse(value)
        at = when(entry, *args)
        return None if at is None or entry.partition is None else (at, entry.partition)

    return due_of


def rebuild_all(items: Iterable[tuple[bytes, bytes]], indexes: list[tuple[DueIndex, DueOf]]) -> None:
    """Every index over one table, replaced by what the table holds, in one read of the table: a table kept for a
    day is read once per start, and the ``due_of``s of one table may share the parse of each value."""
    entries: list[dict[bytes, tuple[float, int]]] = [{} for _ in indexes]
    for key, value in items:
        for found, (_, due_of) in zip(entries, indexes):
            if (due := due_of(value)) is not None:
                found[key] = due
    for found, (index, _) in zip(entries, indexes):
        index._replace(found)
