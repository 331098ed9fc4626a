"""What the end-to-end benchmark counts around a run: CPU per process kind, requests, storage, the stage alone.

- CPU: ``/proc/<pid>/stat`` (user + system, and the reaped children's) of every process of each kind, with its
  descendants: SeaweedFS, Tansu, the workers, their exiftools (a worker's descendants), ingest, and this
  process (the load generator) less its broker retention thread, whose own CPU time that thread counts.
- Object-store requests: SeaweedFS's own Prometheus counters (``SeaweedFS_s3_request_total``), by request
  type and bucket, and the pipeline's own calls (``medialane_object_store_seconds_count`` of ingest and workers).
- Produce requests: Tansu exports no metrics, but its S3 engine writes one ``records/<offset>.batch`` object
  per produce request and partition, so the batch objects written are counted, by topic.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path

from adapters.objects import ObjectStore
from compose.embedded import BROKER_BUCKET_SUFFIX, EmbeddedPipeline
from schemas.settings import Settings

TICK = os.sysconf("SC_CLK_TCK")
KINDS = ("seaweedfs", "tansu", "broker retention", "workers", "exiftool", "ingest", "load generator")
PIPELINE_KINDS = KINDS[:-1]


def process_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK


def _table() -> dict[int, tuple[int, float]]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := process_stat(int(entry))) is not None:
            table[int(entry)] = stat
    return table


def _descendants(table: dict[int, tuple[int, float]], root: int) -> list[int]:
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def cpu_by_kind(pipeline: EmbeddedPipeline) -> dict[str, float]:
    """CPU seconds so far of every live process of each kind (a worker's descendants are its exiftools)."""
    table = _table()
    cpu = dict.fromkeys(KINDS, 0.0)

    def add(kind: str, pids: list[int]) -> None:
        cpu[kind] += sum(table[pid][1] for pid in pids if pid in table)

    for kind, child in (("seaweedfs", pipeline.stack.object_store), ("tansu", pipeline.stack.broker),
                        ("ingest", pipeline.ingest)):  # fmt: skip
        if child.process is not None:
            add(kind, [child.process.pid, *_descendants(table, child.process.pid)])
    for worker in pipeline.workers:
        if worker.process is not None:
            add("workers", [worker.process.pid])
            add("exiftool", _descendants(table, worker.process.pid))
    # The retention is a thread of the process that started the stack: this one here, `medialane up`'s otherwise.
    retention = pipeline.stack.retention.cpu_seconds if pipeline.stack.retention is not None else 0.0
    add("load generator", [os.getpid()])
    cpu["load generator"] -= retention
    cpu["broker retention"] = retention
    return cpu


def diff(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after.keys() | before.keys() if after.get(k, 0) != before.get(k, 0)}


def _metrics(url: str) -> str:
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return ""


LABEL = re.compile(r'(\w+)="([^"]*)"')


def s3_requests(metrics_port: int, broker_bucket: str) -> Counter:
    """S3 requests SeaweedFS has served, keyed 'broker TYPE' (Tansu's bucket) or 'pipeline TYPE' (the rest)."""
    counts: Counter = Counter()
    for line in _metrics(f"http://127.0.0.1:{metrics_port}/metrics").splitlines():
        if line.startswith("SeaweedFS_s3_request_total{"):
            labels = dict(LABEL.findall(line.split("}", 1)[0]))
            owner = "broker" if labels.get("bucket") == broker_bucket else "pipeline"
            counts[f"{owner} {labels.get('type', '?')}"] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def store_calls(pipeline: EmbeddedPipeline) -> Counter:
    """The pipeline's own object-store calls (ingest's and the workers'), by call."""
    counts: Counter = Counter()
    for url in [pipeline.url, *pipeline.settings.worker_urls]:
        for line in _metrics(f"{url}/metrics").splitlines():
            if line.startswith("medialane_object_store_seconds_count{"):
                labels = dict(LABEL.findall(line.split("}", 1)[0]))
                counts[labels.get("call", "?")] += int(float(line.rsplit(" ", 1)[1]))
    return counts


TOPIC = re.compile(r"/topics/([^/]+)/partitions/\d+/records/[^/]*\.batch$")


def broker_objects(settings: Settings, deleted: Counter | None = None) -> tuple[Counter, int, int, Counter]:
    """The broker bucket: batch objects by topic, all objects, all bytes, batch bytes by topic (minio SDK). The
    batch objects count those the broker retention has ``deleted`` too: between two listings, what was produced."""
    store = ObjectStore(settings)
    batches, objects, size, batch_bytes = Counter(deleted or {}), 0, 0, Counter()
    for o in store.client.list_objects(f"{settings.s3_bucket}{BROKER_BUCKET_SUFFIX}", recursive=True):
        objects, size = objects + 1, size + (o.size or 0)
        if match := TOPIC.search(o.object_name):
            batches[match.group(1)] += 1
            batch_bytes[match.group(1)] += o.size or 0
    return batches, objects, size, batch_bytes


def bucket_bytes(settings: Settings) -> tuple[int, int]:
    """The pipeline's bucket (originals, results, listing entries): objects and bytes."""
    store = ObjectStore(settings)
    objects = list(store.client.list_objects(settings.s3_bucket, recursive=True))
    return len(objects), sum(o.size or 0 for o in objects)


def disk_files(path: Path) -> dict[str, int]:
    """Bytes allocated on disk by each file under ``path`` (SeaweedFS's volumes, the workers' RocksDB tables)."""
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            try:
                files[os.path.relpath(full, path)] = os.lstat(full).st_blocks * 512
            except FileNotFoundError:
                pass
    return files


def disk_bytes(path: Path) -> int:
    return sum(disk_files(path).values())


def stage_only(files: list[bytes], processes: int, rounds: int = 3) -> tuple[float, list[float]]:
    """The metadata stage's own function (extract_metadata, one kept-open ExifTool a process) over the same
    files, in ``processes`` processes: median files/s of ``rounds`` measurements of at least 4 s each."""
    from bench.metadata import Scaled

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, data in enumerate(files):
            path = Path(folder) / f"camera-{index}.jpg"
            path.write_bytes(data)
            paths.append(path)
        scaled = Scaled(Settings(), processes)
        try:
            scaled.files_per_second(paths)  # untimed: exiftool started and its modules loaded in each process
            rates = [scaled.files_per_second(paths) for _ in range(rounds)]
        finally:
            scaled.close()
    return statistics.median(rates), rates
