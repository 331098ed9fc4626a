"""Why the embedded stack's object store costs more as it ages (issue 16): SeaweedFS's CPU a job for the S3
requests a metadata job makes, on a fresh store and again after ``--fill`` more jobs, each with SeaweedFS's own
CPU profile (``weed server -debug``'s pprof) of the measured requests, summed by function.

A job here is what the pipeline asks of the object store for one metadata job, with the same key shapes: the
original (200 KB), the result document and the listing entry written; the original and the result read back;
a broker batch object written to a partition directory, the directory listed and the batch read (Tansu's
produce and fetch), and the batch of 200 jobs earlier deleted (the project's broker retention).

    python -m bench.store_ageing [--fill 25000] [--jobs 2000] [--filer-store leveldb|leveldb2|leveldb3|sqlite]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import io
import os
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from adapters.objects import ObjectStore
from bench.pipeline_costs import process_stat
from compose.embedded import BROKER_BUCKET_SUFFIX, EmbeddedStack
from schemas.settings import Settings
from tests.isolated_stack import isolated_settings

DEBUG_PORT = 16062
PROFILE_SECONDS = 6
KEPT_BATCHES = 200


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes):
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        if key & 7 == 0:
            value, i = _varint(data, i)
        elif key & 7 == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        else:
            width = 8 if key & 7 == 1 else 4
            value, i = data[i:i + width], i + width
        yield key >> 3, key & 7, value


def _ints(value, wire: int) -> list[int]:
    if wire == 0:
        return [value]
    out, i = [], 0
    while i < len(value):
        number, i = _varint(value, i)
        out.append(number)
    return out


def profile_by_function(pprof: bytes) -> collections.Counter:
    """CPU share of each function on the stack (cumulative), from Go's pprof protobuf."""
    data = gzip.decompress(pprof)
    samples, locations, functions, strings = [], {}, {}, []
    for field, _, value in _fields(data):
        if field == 2:
            ids, values = [], []
            for f, w, v in _fields(value):
                if f == 1:
                    ids += _ints(v, w)
                elif f == 2:
                    values += _ints(v, w)
            samples.append((ids, values[-1]))
        elif field == 4:
            location, lines = None, []
            for f, _, v in _fields(value):
                if f == 1:
                    location = v
                elif f == 4:
                    lines += [function for g, _, function in _fields(v) if g == 1]
            locations[location] = lines
        elif field == 5:
            parsed = {f: v for f, _, v in _fields(value)}
            functions[parsed.get(1)] = parsed.get(2, 0)
        elif field == 6:
            strings.append(value.decode(errors="replace"))
    total, shares = sum(v for _, v in samples) or 1, collections.Counter()
    for ids, value in samples:
        for name in {strings[functions[f]] for loc in ids for f in locations.get(loc, []) if f in functions}:
            shares[name] += value / total
    return shares


class Mix:
    def __init__(self, store: ObjectStore, broker: str) -> None:
        self.client, self.bucket, self.broker = store.client, store.bucket, broker
        self.original, self.document = os.urandom(200_000), os.urandom(3_000)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(bucket, key, io.BytesIO(data), len(data))

    def job(self, i: int) -> None:
        job_id, partition = f"{i:08d}-{uuid.uuid4().hex[:8]}", i % 4
        self.put(self.bucket, f"originals/{job_id}/original", self.original)
        self.put(self.bucket, f"results/{job_id}/metadata.json", self.document)
        self.put(self.bucket, f"owners/key1/{job_id}.json", self.document[:800])
        self.client.get_object(self.bucket, f"originals/{job_id}/original").read()
        self.client.get_object(self.bucket, f"results/{job_id}/metadata.json").read()
        batches = f"clusters/tansu_cluster/topics/medialane.status/partitions/{partition}/records/"
        self.put(self.broker, f"{batches}{i:020d}.batch", self.document[:500])
        list(self.client.list_objects(self.broker, prefix=batches))
        self.client.get_object(self.broker, f"{batches}{i:020d}.batch").read()
        if i >= KEPT_BATCHES:
            self.client.remove_object(self.broker, f"{batches}{i - KEPT_BATCHES:020d}.batch")

    def run(self, start: int, count: int) -> None:
        with ThreadPoolExecutor(8) as threads:
            list(threads.map(self.job, range(start, start + count)))


def measured(mix: Mix, pid: int, start: int, count: int, label: str) -> None:
    profile: list[bytes] = []
    url = f"http://127.0.0.1:{DEBUG_PORT}/debug/pprof/profile?seconds={PROFILE_SECONDS}"
    sampler = threading.Thread(target=lambda: profile.append(urllib.request.urlopen(url).read()))
    before, started = process_stat(pid)[1], time.perf_counter()
    sampler.start()
    mix.run(start, count)
    sampler.join()
    spent = process_stat(pid)[1] - before
    print(f"{label}: {count} jobs in {time.perf_counter() - started:.1f} s, SeaweedFS {spent / count * 1000:.2f} ms "
          f"of CPU a job")  # fmt: skip
    shares = profile_by_function(profile[0])
    listing = shares["github.com/seaweedfs/seaweedfs/weed/filer.(*Filer).StreamListDirectoryEntries"]
    iterating = max((v for k, v in shares.items() if k.startswith("github.com/syndtr/goleveldb/leveldb.(*dbIter)")),
                    default=0.0)  # fmt: skip
    md5 = shares["crypto/md5.block"]
    print(f"  of its CPU: directory listing {listing:.0%} (LevelDB's iterator {iterating:.0%}), MD5 {md5:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", type=int, default=25_000, help="jobs made between the two measurements")
    parser.add_argument("--jobs", type=int, default=2_000, help="jobs of each measurement")
    parser.add_argument("--filer-store", choices=("leveldb", "leveldb2", "leveldb3", "sqlite"), default="leveldb",
                        help="SeaweedFS's metadata store (leveldb is what a new embedded stack runs)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-store-ageing-") as data_dir:
        settings = isolated_settings(Settings(link_secret=uuid.uuid4().hex), Path(data_dir), 1)
        stack = EmbeddedStack(settings)
        weed = stack.object_store
        weed.argv += ["-debug", f"-debug.port={DEBUG_PORT}"]
        # SeaweedFS reads $HOME/.seaweedfs/filer.toml: a home of its own, in the run's directory.
        home = Path(data_dir) / "weed-home"
        (home / ".seaweedfs").mkdir(parents=True)
        where = f'dbFile = "{home}/filer.db"' if args.filer_store == "sqlite" else f'dir = "{home}/filer"'
        (home / ".seaweedfs" / "filer.toml").write_text(f"[{args.filer_store}]\nenabled = true\n{where}\n")
        weed.env = {**weed.env, "HOME": str(home)}
        stack.start_object_store()
        try:
            mix = Mix(ObjectStore(stack.settings), f"{stack.settings.s3_bucket}{BROKER_BUCKET_SUFFIX}")
            print(f"filer store {args.filer_store}")
            measured(mix, weed.process.pid, 0, args.jobs, "fresh")
            started = time.perf_counter()
            mix.run(args.jobs, args.fill)
            print(f"{args.fill} more jobs in {time.perf_counter() - started:.0f} s")
            measured(mix, weed.process.pid, args.jobs + args.fill, args.jobs, f"after {args.jobs + args.fill} jobs")
        finally:
            weed.stop()


if __name__ == "__main__":
    main()
