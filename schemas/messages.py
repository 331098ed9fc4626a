"""Every message medialane publishes.

Defined once here; schemas/topics.py says which topic carries which, and ``python -m schemas.export``
writes their JSON Schemas next to this file (a test fails when those files are stale).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.uniquify import CopyTask, UniquifyParams


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    """A random UUID: 122 random bits, so job ids cannot be guessed."""
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Op(StrEnum):
    METADATA = "metadata"
    PHASH = "phash"
    STRIP = "strip"
    UNIQUIFY = "uniquify"


class KeepItem(StrEnum):
    """What stripping may keep: the image still displays upright, colours stay right, credit stays."""

    ORIENTATION = "orientation"
    ICC = "icc"
    COPYRIGHT = "copyright"


DEFAULT_KEEP = (KeepItem.ORIENTATION, KeepItem.ICC)


class Status(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    # Some ops completed, some failed: each op's outcome is in JobView.outcomes.
    PARTIAL = "partial"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.PARTIAL, Status.FAILED)


# Fixed for ever: every event id ever published is derived from it.
EVENT_NAMESPACE = uuid.UUID("5b0f8c1e-6d7a-4f0e-9a51-3c2d1e0f7a60")


def result_event_id(job_id: str, op: Op) -> str:
    """The id of an op's result event: the same on every delivery of it, so a subscriber deduplicates by it."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{job_id}/{op.value}"))


class Message(BaseModel):
    # A reader ignores fields it does not know: a newer stage's message is read by an older one during a
    # rolling upgrade instead of being dead-lettered.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ErrorInfo(Message):
    code: str = Field(description="Machine-readable error code, e.g. extract_timeout.")
    message: str = Field(description="Human-readable explanation.")


class Upload(Message):
    """An original the ingest service already stored, with what it learnt reading it."""

    kind: Literal["upload"] = "upload"
    object_key: str
    size: int
    sha256: str
    mime: str

    @classmethod
    def of(cls, object_key: str, data: bytes, mime: str) -> Upload:
        """The record of an original stored at ``object_key``, its size and SHA-256 taken from its bytes."""
        return cls(object_key=object_key, size=len(data), sha256=hashlib.sha256(data).hexdigest(), mime=mime)


class RemoteUrl(Message):
    """A URL a worker fetches through the URL guard."""

    kind: Literal["url"] = "url"
    url: str


Source = Annotated[Upload | RemoteUrl, Field(discriminator="kind")]


class OpOptions(Message):
    """Options of a job's ops, each with the default a client gets when it says nothing."""

    keep: list[KeepItem] = Field(list(DEFAULT_KEEP), description="strip: what the cleaned file keeps.")


class JobRecord(BaseModel):
    """What a job lookup needs of a job's request record (the job as ingest published it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: str
    ops: list[Op]
    created_at: datetime
    owner: str | None = None
    client_id: str | None = None
    webhook_url: str | None = None
    name: str | None = None


class JobRequest(Message):
    """Topic ``medialane.jobs``: a job as the client asked for it (a media reference, never the bytes)."""

    job_id: str
    ops: list[Op]
    options: OpOptions = Field(default_factory=OpOptions)
    name: str = Field(description="The client's file name (display only; never a path).")
    source: Source
    created_at: datetime
    owner: str | None = Field(None, description="key_id of the API key that made the job (None: no API call made it).")
    client_id: str | None = Field(None, description="The client's own id for the job, echoed in its document, webhook.")
    webhook_url: str | None = Field(None, description="Checked by the URL guard; the finished job is POSTed there.")


class MediaReady(Message):
    """A job's original, in the object store and ready for every op: what each op module is handed."""

    job_id: str
    ops: list[Op]
    options: OpOptions = Field(default_factory=OpOptions)
    name: str
    object_key: str
    size: int
    sha256: str
    mime: str
    owner: str | None = Field(None, description="key_id of the API key that made the job (None: no API call made it).")


class OpResult(Message):
    """A result message: every one carries the event id its job and op make (``result_event_id``)."""

    op: ClassVar[Op]
    job_id: str
    event_id: str | None = Field(
        None, description="Derived from the job id and op: a redelivered result carries the same one; deduplicate by it."
    )

    @model_validator(mode="before")
    @classmethod
    def _event_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("event_id") is None and isinstance(data.get("job_id"), str):
            return {**data, "event_id": result_event_id(data["job_id"], cls.op)}
        return data


class MetadataResult(OpResult):
    """Topic ``medialane.metadata``: the full metadata document of one job's file."""

    op: ClassVar[Op] = Op.METADATA
    name: str
    object_key: str = Field(description="Object store key of the document: results/{job_id}/metadata.json.")
    metadata: dict[str, Any]
    extracted_at: datetime

    def document(self) -> dict[str, Any]:
        """What ``JobView.result["metadata"]`` and results/{job_id}/metadata.json hold."""
        return self.metadata


class PHashRecord(OpResult):
    """Topic ``medialane.phash``: an image's perceptual hashes, as displayed (EXIF orientation applied)."""

    op: ClassVar[Op] = Op.PHASH
    name: str
    phash: str = Field(pattern="^[0-9a-f]{16}$", description="64-bit DCT pHash, 16 hex digits (ImageKit's format).")
    mirrored_phash: str = Field(pattern="^[0-9a-f]{16}$", description="pHash of the horizontally mirrored image.")
    algorithm: str = Field(description="Hashes are comparable only within one algorithm and version.")
    algorithm_version: int
    orientation_applied: Literal[True] = True
    sha256: str = Field(description="Exact-duplicate key: SHA-256 of the file's bytes.")
    width: int
    height: int
    hashed_at: datetime
    owner: str | None = Field(None, description="key_id of the API key that made the job: only it finds the image "
                                                "in near-duplicate search (None: no key does).")  # fmt: skip

    def document(self) -> dict[str, Any]:
        """What ``JobView.result["phash"]`` holds."""
        return self.model_dump(mode="json", exclude={"job_id", "event_id", "name", "hashed_at", "owner"})


class StrippedFile(OpResult):
    """Topic ``medialane.stripped``: the cleaned copy of a job's file, behind an expiring link."""

    op: ClassVar[Op] = Op.STRIP
    name: str
    object_key: str = Field(description="Under tmp/: the bucket's lifecycle rule deletes it after a day.")
    download_url: str
    expires_at: datetime
    size: int
    format: str
    removed: list[str] = Field(description="Metadata groups found and removed.")
    kept: list[str] = Field(description="Metadata kept, as the job's keep option asked.")
    stripped_at: datetime

    def document(self) -> dict[str, Any]:
        """What ``JobView.result["strip"]`` holds."""
        return {
            "downloadUrl": self.download_url, "expiresAt": self.expires_at.isoformat(), "size": self.size,
            "format": self.format, "removed": self.removed, "kept": self.kept,
        }  # fmt: skip


class UniquifySource(Message):
    object_key: str
    name: str
    md5: str = Field(description="Copies must differ from every source as well as from each other.")


class UniquifyJob(Message):
    """Topic ``medialane.uniquify.jobs``: N perturbed copies of each source, zipped."""

    job_id: str
    ops: list[Op] = Field(default_factory=lambda: [Op.UNIQUIFY])
    params: UniquifyParams = Field(description="Validated at ingest.")
    seed: int
    sources: list[UniquifySource]
    donor_key: str | None = Field(None, description="Object key of the stored EXIF donor, for exif=3.")
    created_at: datetime
    owner: str | None = Field(None, description="key_id of the API key that made the job (None: no API call made it).")
    client_id: str | None = Field(None, description="The client's own id for the job, echoed in its document, webhook.")
    webhook_url: str | None = Field(None, description="Checked by the URL guard; the finished job is POSTed there.")


class CopyOrder(Message):
    """Topic ``medialane.uniquify.tasks`` (keyed by job/source/copy, so copies spread over workers)."""

    job_id: str
    task: CopyTask
    params: UniquifyParams
    source_key: str
    donor_key: str | None = None


class CopyPlanned(Message):
    kind: Literal["planned"] = "planned"
    job_id: str
    expected: int
    job: UniquifyJob


class CopyMade(Message):
    kind: Literal["made"] = "made"
    job_id: str
    task: CopyTask
    object_key: str | None = Field(None, description="The copy in the object store, when it was made.")
    entry: dict[str, Any] | None = Field(None, description="Its manifest line: path, md5, size, transforms...")
    error: ErrorInfo | None = Field(None, description="Why this copy could not be made (its source's fault).")


CopyEvent = Annotated[CopyPlanned | CopyMade, Field(discriminator="kind")]


class CopyProgress(Message):
    """Topic ``medialane.uniquify.copies`` (keyed by job id): the fan-in's input, one job per partition."""

    event: CopyEvent


class Uniquified(OpResult):
    """Topic ``medialane.uniquified``: a finished uniquification job and its zip."""

    op: ClassVar[Op] = Op.UNIQUIFY
    object_key: str
    download_url: str
    expires_at: datetime
    copies: int = Field(description="Copies made.")
    files: int = Field(description="Files in the zip: the copies and manifest.json.")
    size: int
    failed: list[dict[str, Any]] = Field(description="Copies that could not be made, with their source and reason.")
    manifest: dict[str, Any]
    finished_at: datetime

    def document(self) -> dict[str, Any]:
        """What ``JobView.result["uniquify"]`` holds."""
        return {
            "downloadUrl": self.download_url, "expiresAt": self.expires_at.isoformat(), "copies": self.copies,
            "files": self.files, "size": self.size, "failed": self.failed, "list": self.manifest["copies"],
        }  # fmt: skip


class WebhookAttempt(Message):
    """One POST of a finished job's document to its ``webhook_url``."""

    at: datetime
    status_code: int | None = Field(None, description="The receiver's HTTP status: 2xx delivers, any other is retried.")
    error: ErrorInfo | None = Field(
        None, description="Why no status came: url_forbidden, fetch_timeout, fetch_failed or webhook_unsigned."
    )


class WebhookView(Message):
    """A job's webhook and how its delivery went (``JobView.webhook``); never a secret."""

    url: str
    delivered: bool = Field(False, description="A 2xx answer came; nothing more is sent.")
    attempts: list[WebhookAttempt] = Field(default_factory=list, description="Every POST so far, oldest first.")
    next_attempt_at: datetime | None = Field(
        None, description="When the next POST is due; null before the job ends, once delivered, or after giving up."
    )


class WebhookOrder(Message):
    """A finished job's webhook to deliver, ordered by the status table when the job ends."""

    kind: Literal["order"] = "order"
    job_id: str
    url: str
    owner: str | None = Field(description="key_id of the API key whose webhook secret signs the POSTs.")
    document: dict[str, Any] = Field(description="The POST's body: the job document, without its webhook field.")
    ended_at: datetime = Field(description="When the job ended; retries stop webhook_retry_window after it.")


class WebhookAttempted(Message):
    """The outcome of one POST, made by the retry timer of the worker that owns the job's partition."""

    kind: Literal["attempted"] = "attempted"
    job_id: str
    number: int = Field(ge=1, description="Which attempt this was (1: the first); an outcome seen before is ignored.")
    attempt: WebhookAttempt


class WebhookEvent(Message):
    """Topic ``medialane.webhooks`` (keyed by job id): the delivery stage's input."""

    event: Annotated[WebhookOrder | WebhookAttempted, Field(discriminator="kind")]


class DeadLetter(Message):
    """Topic ``medialane.dlq``: a message no stage could process, with the reason, so partitions never block."""

    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    payload: str = Field(description="The message value as text (invalid UTF-8 replaced), at most 64 KiB.")
    at: datetime
