"""How long a worker's pHash index replica takes to come back with N hashes indexed.

    python -m bench.similar_restart [--hashes 1000000]

Two paths, as sink/similar.py takes them: restoring the snapshot a replica writes to the object store
(the snapshot's bytes are timed from memory: reading 10s of MB from the store adds its transfer time),
and rebuilding from the topic's records (JSON decoding and indexing timed; Kafka's transfer is not).
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime

import numpy as np

from media.phash import ALGORITHM, ALGORITHM_VERSION
from schemas.messages import PHashRecord
from adapters.similar_query import SimilarQuery
from sink.similar import SimilarityReplica


def records(count: int) -> list[bytes]:
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**63, count, dtype=np.int64).astype(np.uint64) | (rng.integers(0, 2, count).astype(np.uint64) << 63)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        PHashRecord(
            job_id=str(uuid.UUID(int=int(i) + 1)), name=f"photo-{i}.jpg", phash=f"{int(h):016x}",
            mirrored_phash=f"{int(h) ^ 0xFF:016x}", algorithm=ALGORITHM, algorithm_version=ALGORITHM_VERSION,
            sha256=f"{i:064x}", width=4000, height=3000, hashed_at=now,
        ).model_dump_json().encode()
        for i, h in enumerate(hashes)
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=1_000_000)
    args = parser.parse_args()
    topic = records(args.hashes)

    started = time.perf_counter()
    rebuilt = SimilarityReplica()
    for value in topic:
        rebuilt.apply(PHashRecord.model_validate_json(value))
    rebuild = time.perf_counter() - started

    started = time.perf_counter()
    snapshot = rebuilt.snapshot()
    write = time.perf_counter() - started
    started = time.perf_counter()
    restored = SimilarityReplica.restore(snapshot)
    restore = time.perf_counter() - started

    query = SimilarQuery(rebuilt.info[str(uuid.UUID(int=1))][1], 8, 20)
    assert restored.search(query) == rebuilt.search(query)
    print(f"{args.hashes:,} hashes; snapshot {len(snapshot) / 1e6:.1f} MB\n")
    print("| step | seconds |\n|---|---:|")
    print(f"| rebuild from the topic's records (decode + index) | {rebuild:.2f} |")
    print(f"| write the snapshot | {write:.2f} |")
    print(f"| restore from the snapshot | {restore:.2f} |")
    print(f"| restore / rebuild | {restore / rebuild:.2f}x |")


if __name__ == "__main__":
    main()
