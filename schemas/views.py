"""What the HTTP API answers, and what the status table holds per job (``JobView``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from schemas.messages import ErrorInfo, Message, Op, Status, WebhookView
from schemas.status_events import OpOutcome


class Body(Message):
    """An answer of the API alone: its fields are all documented, none is added unannounced."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class JobView(Message):
    """A job as ``GET /v1/jobs/{job_id}`` returns it. The status table stores it without ``result``: each
    document stays in the object store, named by its op's ``outcomes`` entry, and a lookup reads it there."""

    success: Literal[True] = True
    job_id: str
    status: Status
    percent: int = Field(ge=0, le=100)
    ops: list[Op]
    created_at: datetime
    updated_at: datetime
    result: dict[str, Any] = Field(default_factory=dict, description="Each completed op's result document.")
    error: ErrorInfo | None = Field(None, description="Why the job failed; for a partial job, its first failed op's error.")
    outcomes: dict[Op, OpOutcome] = Field(
        default_factory=dict, description="Each op's own state: completed, failed with its error, or processing."
    )
    name: str | None = Field(None, description="The client's file name, when the job has one file.")
    owner: str | None = Field(None, description="key_id of the API key that made the job; only that key sees it.")
    id: str | None = Field(None, description="The id the client gave the job, echoed.")
    webhook: WebhookView | None = Field(None, description="The job's webhook and its delivery attempts, if it has one.")


class JobPage(Body):
    """``GET /v1/jobs``: a page of the caller's jobs, newest first."""

    success: Literal[True] = True
    jobs: list[JobView]
    next_cursor: str | None = Field(description="Send as ?cursor= for the next page; null on the last page.")


class SimilarImage(Body):
    job_id: str
    name: str
    phash: str
    distance: int = Field(ge=0, le=64, description="Hamming distance to the query hash (or its mirror).")
    mirrored: bool = Field(description="The match is against the query's horizontally mirrored hash.")
    exact_duplicate: bool | None = Field(
        description="Same SHA-256 as the query job's file; null when the query is a bare hash."
    )


class SimilarImages(Body):
    """``GET /v1/similar`` and ``GET /v1/jobs/{job_id}/similar``: matches sorted by distance."""

    success: Literal[True] = True
    phash: str
    max_distance: int
    algorithm: str
    results: list[SimilarImage]


class ErrorBody(Body):
    """Every error response: a message and a machine code."""

    success: Literal[False] = False
    error: str
    code: str
    field: str | None = Field(None, description="The request parameter at fault, when one is; omitted otherwise.")


class JobAccepted(Body):
    """``202`` answer of ``POST /v1/jobs``."""

    success: Literal[True] = True
    job_id: str
    status: Status


API_MODELS: tuple[type[Message], ...] = (JobView, JobPage, JobAccepted, ErrorBody, SimilarImages)
