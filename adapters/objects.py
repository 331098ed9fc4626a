"""The object store, reached only through the MinIO SDK: SeaweedFS when embedded, MinIO or S3 in production."""

from __future__ import annotations

import io
import itertools
import os
from typing import Any

import certifi
import pydantic_core
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.deleteobjects import DeleteObject
from minio.error import S3Error, ServerError
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from schemas.errors import NotFound
from schemas.settings import Settings
from schemas.uniquify import CopyTask

PROBE_KEY = "tmp/.ready"
# The SDK waits 5 minutes for a connection and retries 5 times: a store that is down would hold a request
# (and an API answer) for seconds to minutes. A refused or reset connection now fails a call within about a
# second (three tries, 0.4 s and 0.8 s apart); a store that accepts but never answers, within the read timeout.
CONNECT_TIMEOUT, READ_TIMEOUT = 2.0, 20.0
RETRIES = urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])


def original_key(job_id: str) -> str:
    return f"originals/{job_id}/original"


def request_key(job_id: str) -> str:
    return f"jobs/{job_id}/request.json"


def result_key(job_id: str, op: str) -> str:
    return f"results/{job_id}/{op}.json"


def preview_key(job_id: str) -> str:
    """Beside the job's results, so it goes with them; made on the first GET /v1/jobs/{job_id}/preview."""
    return f"results/{job_id}/preview.jpg"


def source_key(job_id: str, index: int) -> str:
    return f"originals/{job_id}/{index}"


def copy_key(job_id: str, task: CopyTask) -> str:
    return f"tmp/uniquify/{job_id}/copies/{task.source_index}-{task.copy_index}-{task.attempt}.jpg"


def archive_key(job_id: str) -> str:
    return f"tmp/uniquify/{job_id}/uniquified-{job_id}.zip"


def owner_prefix(owner: str) -> str:
    return f"owners/{owner}/"


def donor_key(donor_id: int) -> str:
    return f"donors/{donor_id}.exif"


def job_prefixes(job_id: str) -> tuple[str, ...]:
    """Every prefix holding objects of one job (a job's listing entry, under its owner, is not one)."""
    return (f"originals/{job_id}/", f"results/{job_id}/", f"jobs/{job_id}/", f"tmp/strip/{job_id}/",
            f"tmp/uniquify/{job_id}/")  # fmt: skip


def retention(settings: Settings) -> dict[str, int]:
    """Days the bucket's lifecycle rules keep the objects under each prefix."""
    return {
        **{prefix: 1 for prefix in settings.expiring_prefixes},
        "originals/": settings.originals_days,
        "results/": settings.results_days,
    }


def stripped_key(job_id: str, name: str) -> str:
    """Under tmp/, which the bucket's lifecycle rule empties after a day; ``name`` is a safe_name."""
    return f"tmp/strip/{job_id}/{name}"


class ObjectStore:
    """Synchronous, like the SDK; async callers run it in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT), maxsize=10, retries=RETRIES,
                cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            ),
        )  # fmt: skip

    def ensure_bucket(self, name: str | None = None) -> None:
        """Create the bucket if missing; the main bucket also gets the one-day expiry of short-lived prefixes."""
        name = name or self.bucket
        if not self.client.bucket_exists(name):
            try:
                self.client.make_bucket(name)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        if name == self.bucket:
            rules = [
                Rule(ENABLED, rule_filter=Filter(prefix=prefix), rule_id=f"expire-{prefix.strip('/')}",
                     expiration=Expiration(days=days))
                for prefix, days in retention(self.settings).items()
            ]  # fmt: skip
            self.client.set_bucket_lifecycle(name, LifecycleConfig(rules))

    def ready_for_writes(self) -> bool:
        try:
            self.ensure_bucket()
            self.put_bytes(PROBE_KEY, b"ok")
            return True
        except Exception:  # noqa: BLE001 - any failure here just means "not yet"
            return False

    def ping(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            raise LookupError(f"bucket {self.bucket} does not exist")

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def put_json(self, key: str, document: Any) -> int:
        """Writes ``document`` as compact JSON; its size in bytes. On a metadata document pydantic's encoder
        takes 30 % of the standard library's time, its decoder (below) 65 %."""
        body = pydantic_core.to_json(document)
        self.put_bytes(key, body, "application/json")
        return len(body)

    def get_bytes(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def get_json(self, key: str) -> Any:
        return pydantic_core.from_json(self.get_bytes(key))

    def get_bytes_or_none(self, key: str) -> bytes | None:
        """The object's bytes; None when there is none (one request: no stat before the read)."""
        try:
            return self.get_bytes(key)
        except S3Error as exc:
            if _missing(exc):
                return None
            raise

    def get_json_or_none(self, key: str) -> Any:
        data = self.get_bytes_or_none(key)
        return None if data is None else pydantic_core.from_json(data)

    def open(self, key: str):
        """A streaming reader (``read(n)``, ``close()``, ``release_conn()``); NotFound when there is no object."""
        try:
            return self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if _missing(exc):
                raise NotFound("no such download", code="download_not_found") from exc
            raise

    def put_file(self, key: str, path: str, content_type: str) -> None:
        self.client.fput_object(self.bucket, key, path, content_type=content_type)

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def delete_job(self, job_id: str, *keys: str) -> list[str]:
        """Every object of the job (``job_prefixes``) and ``keys``; the keys deleted. Deleting nothing is fine."""
        found = [key for prefix in job_prefixes(job_id) for key in self.list(prefix)] + list(keys)
        failures = list(self.client.remove_objects(self.bucket, (DeleteObject(key) for key in found)))
        if failures:
            raise RuntimeError(f"could not delete {', '.join(f'{f.name} ({f.code})' for f in failures)}")
        return found

    def list(self, prefix: str) -> list[str]:
        return [item.object_name for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]

    def list_page(self, prefix: str, start_after: str | None, limit: int) -> list[str]:
        """At most ``limit`` keys under ``prefix``, in key order, after ``start_after``."""
        items = self.client.list_objects(self.bucket, prefix=prefix, recursive=True, start_after=start_after)
        return [item.object_name for item in itertools.islice(items, limit)]


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store is down rather than that it refused the call: no connection, no answer in
    time, or 5xx answers through every retry."""
    return isinstance(exc, (urllib3.exceptions.HTTPError, ServerError))


def _missing(exc: S3Error) -> bool:
    return exc.code in ("NoSuchKey", "NoSuchObject", "NotFound")
