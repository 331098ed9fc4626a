"""PHashIndex query latency and memory at 1M and 10M hashes, against a numpy brute-force scan.

    python -m bench.phash_index [--sizes 1000000 10000000] [--queries 1000]

Pinned to one core. For each size and distribution (uniform random hashes, the hard case, and
clusters of near-duplicates, like real collections), the index is built and its tail filled to one
short of a merge, the worst case for queries; each query is an indexed hash with two bits flipped.
Every brute-force answer is checked against the index's. Also measures, at 1M, the snapshot size
and the time to restore from it and to rebuild from a stream of (id, hash) records.
"""

import argparse
import os
import time

import numpy as np

from adapters.phash_index import PHashIndex

ALGORITHM = "dct-phash-8/imagehash-4.3@1"
RADII = (4, 8, 12)
LIMIT = 100
TAIL_LIMIT = 65536
CLUSTER_SIZE = 50
BRUTE_FORCE_SECONDS = 8.0

def uniform(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)

def clustered(rng: np.random.Generator, count: int) -> np.ndarray:
    centres = uniform(rng, count // CLUSTER_SIZE)
    # The AND of four random words sets each bit with probability 1/16: members differ by about 4 bits.
    noise = np.bitwise_and.reduce([uniform(rng, count) for _ in range(4)])
    return centres[rng.integers(0, len(centres), count)] ^ noise

def queries(rng: np.random.Generator, hashes: np.ndarray, count: int) -> list[int]:
    picked = hashes[rng.integers(0, len(hashes), count)]
    flips = (np.uint64(1) << rng.integers(0, 64, count).astype(np.uint64)) | (
        np.uint64(1) << rng.integers(0, 64, count).astype(np.uint64)
    )
    return (picked ^ flips).tolist()

def brute_force(hashes: np.ndarray, query: int, max_distance: int, limit: int) -> list[int]:
    distances = np.bitwise_count(hashes ^ np.uint64(query))
    positions = np.flatnonzero(distances <= max_distance)
    return positions[np.argsort(distances[positions], kind="stable")[:limit]].tolist()

def latencies_ms(run, queries_: list[int]) -> np.ndarray:
    timings = []
    for query in queries_:
        started = time.perf_counter_ns()
        run(query)
        timings.append(time.perf_counter_ns() - started)
    return np.array(timings) / 1e6

def percentiles(timings: np.ndarray) -> str:
    p50, p99 = np.percentile(timings, [50, 99])
    return f"p50 {p50:7.3f} ms  p99 {p99:7.3f} ms"

def filled_index(hashes: np.ndarray) -> tuple[PHashIndex, float]:
    """The index of all hashes with the last TAIL_LIMIT - 1 in its tail, and the time of one merge."""
    merged = len(hashes) - (TAIL_LIMIT - 1)
    index = PHashIndex.build(ALGORITHM, range(merged - TAIL_LIMIT), hashes[: merged - TAIL_LIMIT])
    for position, hash_ in enumerate(hashes[merged - TAIL_LIMIT : merged - 1].tolist(), merged - TAIL_LIMIT):
        index.add(position, hash_)
    started = time.perf_counter()
    index.add(merged - 1, int(hashes[merged - 1]))
    merge_seconds = time.perf_counter() - started
    for position, hash_ in enumerate(hashes[merged:].tolist(), merged):
        index.add(position, hash_)
    return index, merge_seconds

def bench_queries(label: str, hashes: np.ndarray, query_count: int, rng: np.random.Generator) -> None:
    started = time.perf_counter()
    index, merge_seconds = filled_index(hashes)
    print(f"\n{label}: {len(index):,} hashes, built in {time.perf_counter() - started:.1f} s, "
          f"{index.nbytes / len(index):.2f} bytes/hash in the search arrays (ids not counted), "
          f"merging a full tail of {TAIL_LIMIT:,} took {merge_seconds * 1e3:.0f} ms")
    for max_distance in RADII:
        queries_ = queries(rng, hashes, query_count)
        results = {}
        index_timings = latencies_ms(lambda q: results.__setitem__(q, index.query(q, max_distance, LIMIT)), queries_)
        scan_seconds = len(hashes) * 4e-9
        checked = queries_[: max(20, min(query_count, int(BRUTE_FORCE_SECONDS / scan_seconds)))]
        expected = {}
        scan_timings = latencies_ms(lambda q: expected.__setitem__(q, brute_force(hashes, q, max_distance, LIMIT)), checked)
        assert all([id_ for id_, _, _ in results[q]] == expected[q] for q in checked), "index differs from brute force"
        found = np.mean([len(results[q]) for q in queries_])
        print(f"  max_distance {max_distance:2}: index {percentiles(index_timings)} | "
              f"brute force {percentiles(scan_timings)} ({len(checked)} queries) | "
              f"p50 speed-up {np.median(scan_timings) / np.median(index_timings):6.1f}x | {found:.1f} results/query")

def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def bench_restore(rng: np.random.Generator, count: int) -> None:
    hashes = clustered(rng, count)
    before = rss_bytes()
    # Job ids are strings like UUIDs.
    ids = [f"{position:032x}" for position in range(count)]
    index = PHashIndex.build(ALGORITHM, ids, hashes)
    ids_bytes = rss_bytes() - before - index.nbytes
    started = time.perf_counter()
    snapshot = index.snapshot()
    snapshot_seconds = time.perf_counter() - started
    started = time.perf_counter()
    restored = PHashIndex.restore(snapshot)
    restore_seconds = time.perf_counter() - started
    started = time.perf_counter()
    streamed = PHashIndex(ALGORITHM)
    for id_, hash_ in zip(ids, hashes.tolist()):
        streamed.add(id_, hash_)
    stream_seconds = time.perf_counter() - started
    assert len(restored) == len(streamed) == count
    print(f"\nrestore at {count:,} hashes with 32-character string ids (about {ids_bytes / count:.0f} bytes/id "
          f"in Python objects on top of the search arrays):")
    print(f"  snapshot: {len(snapshot) / 1e6:.1f} MB, written in {snapshot_seconds:.2f} s")
    print(f"  restore from snapshot: {restore_seconds:.2f} s")
    print(f"  rebuild from a stream of {count:,} add(id, hash) calls: {stream_seconds:.2f} s")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    rng = np.random.default_rng(2024)
    bench_restore(rng, 1_000_000)
    for count in args.sizes:
        for name, generate in [("uniform", uniform), ("clustered", clustered)]:
            bench_queries(f"{name} {count:,}", generate(rng, count), args.queries, rng)

if __name__ == "__main__":
    main()
