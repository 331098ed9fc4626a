"""The one list of topics: each topic's name, the message it carries and what its key is.

Ingest, the worker and the JSON Schema export read it; every key is UTF-8 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.deletion import JobDeleted
from schemas.messages import (
    CopyOrder, CopyProgress, DeadLetter, JobRequest, Message, MetadataResult, PHashRecord, Op, StrippedFile,
    Uniquified, UniquifyJob, WebhookEvent,
)
from schemas.status_events import StatusEvent

JOB_ID = "job id"


@dataclass(frozen=True)
class Topic:
    name: str
    message: type[Message]
    key: str


JOBS = Topic("medialane.jobs", JobRequest, JOB_ID)
METADATA = Topic("medialane.metadata", MetadataResult, JOB_ID)
PHASH = Topic("medialane.phash", PHashRecord, JOB_ID)
STRIPPED = Topic("medialane.stripped", StrippedFile, JOB_ID)
UNIQUIFY_JOBS = Topic("medialane.uniquify.jobs", UniquifyJob, JOB_ID)
# Keyed per copy, so a job's copies spread over the workers.
COPY_TASKS = Topic("medialane.uniquify.tasks", CopyOrder, "job id/source/copy/attempt")
COPIES = Topic("medialane.uniquify.copies", CopyProgress, JOB_ID)
UNIQUIFIED = Topic("medialane.uniquified", Uniquified, JOB_ID)
STATUS = Topic("medialane.status", StatusEvent, JOB_ID)
WEBHOOKS = Topic("medialane.webhooks", WebhookEvent, JOB_ID)
# Its own topic, not a record on each result topic: every reader of those keeps reading only results.
DELETIONS = Topic("medialane.deletions", JobDeleted, JOB_ID)
DLQ = Topic("medialane.dlq", DeadLetter, "the dead message's own key")

# Where each op publishes its result (the message has ``document()``: what the job's view shows of it).
RESULTS = {Op.METADATA: METADATA, Op.PHASH: PHASH, Op.STRIP: STRIPPED, Op.UNIQUIFY: UNIQUIFIED}

TOPICS = (JOBS, METADATA, PHASH, STRIPPED, UNIQUIFY_JOBS, COPY_TASKS, COPIES, UNIQUIFIED, STATUS, WEBHOOKS, DELETIONS, DLQ)
