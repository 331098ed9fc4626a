"""A job's deletion, as subscribers of ``medialane.deletions`` see it (schemas/topics.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.messages import Message


class JobDeleted(Message):
    """Topic ``medialane.deletions``: the job's owner deleted it. Its objects are already gone from the store when
    this is published; a subscriber deletes what it kept of the job (its messages, documents, hashes)."""

    job_id: str
    owner: str | None = Field(description="key_id of the API key that made and deleted the job.")
    deleted_at: datetime
