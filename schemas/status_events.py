"""The status of a job as the stages report it: each op's outcome, and the events on ``medialane.status`` that
``schemas/job_state.py`` folds into a job's view."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schemas.messages import ErrorInfo, Message, Op, Status, WebhookView


class OpOutcome(Message):
    """How one op of a job ended, or that it has not yet: its result document stays in the object store."""

    status: Literal[Status.PROCESSING, Status.COMPLETED, Status.FAILED]
    error: ErrorInfo | None = Field(None, description="Why the op failed.")
    object_key: str | None = Field(None, description="The op's result document in the object store, once completed.")
    size: int | None = Field(None, description="Bytes of that document.")


class StatusStep(Message):
    """A ``medialane.status`` event without the documents an end may carry, as the readers that fold events
    read it: a reader skips what its model does not name almost for free, where building the documents cost
    ingest's watcher, reading every job's end, a fifth of its CPU."""

    job_id: str
    status: Status
    at: datetime
    ops: list[Op] | None = Field(None, description="The job's ops; set by the first (queued) event.")
    op: Op | None = Field(None, description="The op this event reports on, when it finished one.")
    percent: int | None = Field(None, ge=0, le=100, description="Progress of a long op (uniquify: copies made).")
    result: dict[str, Any] | None = Field(None, description="Workers before per-op outcomes: the op's document.")
    error: ErrorInfo | None = None
    owner: str | None = Field(None, description="key_id of the job's API key; set by the first (queued) event.")
    client_id: str | None = Field(None, description="The client's own id for the job; set by the first (queued) event.")
    webhook_url: str | None = Field(None, description="Where the ended job is POSTed; set by the first (queued) event.")
    webhook: WebhookView | None = Field(None, description="The webhook's delivery state after a step (delivery stage).")
    outcomes: dict[Op, OpOutcome] | None = Field(None, description="Ops that ended; the job ends when every op has one.")
    name: str | None = Field(None, description="The client's file name; set by the first (queued) event.")


class StatusEvent(StatusStep):
    """Topic ``medialane.status``: one step of a job; the status table folds these into JobView."""

    documents: dict[Op, Any] | None = Field(
        None, description="The completed ops' result documents, on the event that ends a job when they are small "
        "together: who waits on the job (ingest's ?wait) has them without reading them back. The status table keeps "
        "their object keys (outcomes) only."
    )
