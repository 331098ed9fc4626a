"""The one settings object every medialane service reads.

Every field comes from a ``MEDIALANE_<FIELD>`` environment variable (``MEDIALANE_KAFKA_BOOTSTRAP``,
``MEDIALANE_S3_ENDPOINT``...). The defaults describe the embedded stack that ``medialane up`` starts;
against Apache Kafka and MinIO only these values change, never the code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CsvTuple = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIALANE_", frozen=True, extra="ignore")

    data_dir: Path = Field(Path(".medialane"), description="Directory holding all embedded-stack data and logs.")

    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, host:port[,host:port].")
    topic_partitions: int = Field(
        2, ge=1, description="Partitions of every medialane topic (and of the status table), set when the topics are "
        "created: workers beyond it stay idle, and a stack's topics keep the count they were created with (every "
        "service takes it from the broker). One per worker of the default stack: on the embedded broker each "
        "partition costs an object per produce and a listing per fetch (docs/benchmarks.md, issue 16)."
    )
    kafka_rebalance_timeout: float = Field(
        2.0, gt=0, description="Consumer rebalance timeout, seconds; Tansu holds a group's first join this long."
    )
    kafka_session_timeout: float = Field(
        6.0, gt=0, description="Consumer session timeout, seconds; a vanished worker is dropped after this."
    )
    kafka_heartbeat_interval: float = Field(
        2.0, gt=0, description="Consumer heartbeat interval, seconds: a third of the session timeout, as Kafka advises "
        "(Tansu rewrites the group's file in the object store on every heartbeat, so an idle stack writes this often)."
    )
    topic_retention_hours: float = Field(
        7 * 24.0, gt=0, description="How long Apache Kafka keeps the work and result topics' records, hours "
        "(retention.ms at topic creation; medialane.phash, the pHash index's source, is kept forever and the tables' "
        "changelogs are compacted). The embedded broker ignores it: docs/operations.md."
    )
    broker_retention_grace_seconds: float = Field(
        3.0, ge=0, description="Embedded broker only: how long a batch every consumer group has read is kept for "
        "readers without a group (ingest's status watcher, a subscriber starting from the end) before the project's "
        "retention deletes it, seconds (docs/operations.md). Apache Kafka keeps topics by retention.ms alone."
    )
    table_standby_replicas: int = Field(
        0, ge=0, description="Standby copies of each table partition a worker keeps warm for failover. A standby reads "
        "its changelog continuously, which the embedded broker (no compaction) makes cost more with every job: 0 there; "
        "1 on Apache Kafka, where changelogs are compacted, makes a failover take over without a replay."
    )
    kafka_fetch_wait_ms: int = Field(
        150,
        ge=1,
        description="Longest a consumer's fetch waits for new data, ms. Tansu answers a waiting fetch only when "
        "this ends, not when data arrives, so on Tansu it is each topic hop's added latency, and every answer "
        "that carries data costs a listing of each of its partitions (docs/benchmarks.md, issue 16, chose 150); "
        "Apache Kafka answers as soon as data arrives (a higher value there only saves idle requests).",
    )

    kafka_linger_ms: int = Field(
        5, ge=0, description="How long a producer holds a record for others to join its produce request, ms. The "
        "embedded broker writes one object per produce request and partition, so batching is what keeps it cheap."
    )

    kafka_compression: Literal["none", "gzip", "lz4", "zstd"] = Field(
        "zstd", description="Compression of every produced batch. The result topics carry JSON documents, which "
        "zstd makes about a quarter of their size, for little CPU on either side."
    )

    s3_endpoint: str = Field("127.0.0.1:18333", description="Object store endpoint, host:port (MinIO or S3).")
    s3_secure: bool = Field(False, description="Use HTTPS to reach the object store.")
    s3_access_key: str = Field("", description="Object store access key; the embedded stack generates one.")
    s3_secret_key: SecretStr = Field(SecretStr(""), description="Object store secret key.")
    s3_region: str = Field("us-east-1", description="Object store region.")
    s3_bucket: str = Field("medialane", description="Bucket holding originals and results.")
    expiring_prefixes: CsvTuple = Field(
        ("tmp/",), description="Object prefixes the bucket's lifecycle rule deletes after one day."
    )
    originals_days: int = Field(
        1, ge=1, description="Days the bucket's lifecycle rule keeps originals (originals/) after they were stored."
    )
    results_days: int = Field(
        30, ge=1, description="Days the bucket's lifecycle rule keeps result documents (results/) after they were written."
    )

    ingest_host: str = Field("127.0.0.1", description="Address the ingest HTTP service binds.")
    ingest_port: int = Field(8080, description="Port of the ingest HTTP service.")
    max_upload_bytes: int = Field(100 * 1024 * 1024, gt=0, description="Largest accepted upload, bytes.")
    max_wait_seconds: float = Field(60.0, gt=0, description="Longest ?wait= a client may ask of POST /v1/jobs.")
    media_metadata_wait_seconds: float = Field(
        20.0, gt=0, description="How long POST /v1/media/metadata waits for its job before answering 202 queued, seconds."
    )

    api_key_cache_seconds: float = Field(
        5.0, ge=0, description="Seconds the ingest service trusts a checked API key: a revoked key works at most this long."
    )
    # A self-hosted pipeline's one client may use all of it (docs/operations.md: lowering these per deployment).
    rate_limit_per_second: float = Field(
        500.0, gt=0, description="Requests a second one API key may make, per ingest process (token bucket rate)."
    )
    rate_limit_burst: int = Field(
        1000, ge=1, description="Requests one API key may make at once before its rate applies (bucket size)."
    )
    max_active_jobs: int = Field(
        1000, ge=1, description="Jobs one API key may have queued or processing at once, per ingest process."
    )

    public_base_url: str = Field(
        "", description="Base URL clients reach the ingest service at, for download links (default: ingest host:port)."
    )
    link_secret: SecretStr = Field(
        SecretStr(""), description="Key signing download links; every service must share it (the embedded stack generates one)."
    )
    link_ttl_seconds: int = Field(24 * 3600, gt=0, description="How long a download link works, seconds.")

    worker_host: str = Field("127.0.0.1", description="Host name other workers reach a worker's web server at.")
    worker_bind: str = Field("127.0.0.1", description="Address a worker's web server binds (0.0.0.0 in containers).")
    worker_port: int = Field(6066, description="Web port of a worker (job lookups are routed between workers).")
    worker_urls: CsvTuple = Field(
        ("http://127.0.0.1:6066",), description="Worker web URLs the ingest service asks for job status."
    )
    workers: int = Field(2, ge=1, description="Number of worker processes `medialane up` starts.")
    worker_id: str = Field(
        "", description="A worker's stable name: its tables live in data_dir/workers/<id>, so a restarted worker "
        "reads only the changelog past what that directory holds. `medialane up` names its workers 0, 1…; "
        "empty: the web port."
    )
    worker_lookup_timeout: float = Field(5.0, gt=0, description="Timeout of one job lookup against a worker, seconds.")

    fetch_max_bytes: int = Field(100 * 1024 * 1024, gt=0, description="Largest body read from a fetched URL, bytes.")
    fetch_connect_timeout: float = Field(5.0, gt=0, description="Connect timeout when fetching a URL, seconds.")
    fetch_total_timeout: float = Field(30.0, gt=0, description="Total timeout when fetching a URL, seconds.")
    fetch_max_redirects: int = Field(5, ge=0, description="Redirect hops followed when fetching a URL.")
    fetch_allow_hosts: CsvTuple = Field(
        (), description="Hosts or CIDRs exempt from the private-address refusal (tests only); empty by default."
    )

    webhook_timeout: float = Field(
        10.0, gt=0, description="Longest one webhook delivery may take (connect, send, answer), seconds; longer fails it."
    )
    webhook_retry_seconds: float = Field(
        30.0, gt=0, description="Delay before the first retry of a failed webhook delivery, seconds; doubled each retry, with jitter."
    )
    webhook_retry_window: float = Field(
        24 * 3600.0, gt=0, description="Failed webhook deliveries are retried for this long after the job ended, seconds."
    )

    phash_snapshot_seconds: float = Field(
        60.0, gt=0, description="How often a worker snapshots its pHash index replica to the object store."
    )

    uniquify_max_copies: int = Field(100, ge=1, description="Most copies of each image one uniquify job may ask for.")
    uniquify_redrive_seconds: float = Field(
        15.0, gt=0, description="A uniquify job with no copy made for this long has its missing copies ordered again."
    )
    uniquify_max_images: int = Field(50, ge=1, description="Most source images in one uniquify job.")
    finished_entries_keep_seconds: float = Field(
        24 * 3600.0, gt=0, description="A zipped uniquify ledger, a finished webhook delivery or a deleted job's entry stays "
        "in its table this long after its last change, to recognise redelivered or late events, then is deleted."
    )

    exiftool_path: str = Field("exiftool", description="The exiftool executable (>= 12.38).")
    exiftool_timeout: float = Field(20.0, gt=0, description="Longest exiftool may take on one file, seconds.")

    log_format: Literal["json", "text"] = Field(
        "text", description="Log lines as JSON objects or plain text; `medialane up` makes json the default."
    )

    _csv = field_validator("expiring_prefixes", "worker_urls", "fetch_allow_hosts", mode="before")(_split_csv)

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/") or f"http://{self.ingest_host}:{self.ingest_port}"

    def env(self) -> dict[str, str]:
        """These settings as ``MEDIALANE_*`` variables, to hand to a child process."""
        out = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            out[f"MEDIALANE_{name.upper()}"] = str(value)
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
