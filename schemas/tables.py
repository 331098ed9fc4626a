"""What the worker's tables hold, one entry per job id: declared here with the topics (schemas/topics.py).

Each table's changelog is a Kafka topic, so its entries are messages too: they evolve by added fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from schemas.deletion import JobDeleted
from schemas.messages import Message, UniquifyJob, WebhookOrder, WebhookView
from schemas.views import JobView


class MadeCopy(Message):
    entry: dict[str, Any] = Field(description="The copy's manifest line: path, md5, size, transforms...")
    object_key: str = Field(description="The copy in the object store, until it is zipped.")


class FailedCopy(Message):
    source: int = Field(description="Index of the source the copy was to be made from.")
    code: str
    message: str


class Ledger(Message):
    """A uniquification job's fan-in (table ``uniquify``): which copies are made, which failed."""

    job: UniquifyJob | None = Field(None, description="The job, once its plan arrived.")
    expected: int | None = Field(None, description="Copies the plan makes; None until it arrived.")
    made: dict[str, MadeCopy] = Field(default_factory=dict, description="By task key (source-copy).")
    failed: dict[str, FailedCopy] = Field(default_factory=dict, description="By task key (source-copy).")
    md5s: dict[str, str] = Field(default_factory=dict, description="Every md5 taken, by the task key (or 'source').")
    zipped: bool = False
    progressed_at: float | None = Field(None, description="Unix time of the last progress, for the redrive.")
    partition: int | None = Field(None, description="The partition of medialane.uniquify.copies holding the job.")


class Delivery(Message):
    """A job's webhook delivery (table ``webhooks``): the order, and the state ``JobView.webhook`` shows."""

    order: WebhookOrder
    state: WebhookView
    partition: int


class DeletedJob(JobDeleted):
    """A deletion as table ``deleted`` keeps it."""

    partition: int | None = Field(None, description="The partition of medialane.deletions it came on; None in "
                                  "entries kept before it was recorded (the job id's partition).")  # fmt: skip


@dataclass(frozen=True)
class Table:
    name: str
    value: type[Message]
    help: str


STATUS = Table("status", JobView, "JobView by job id, folded from medialane.status.")
UNIQUIFY = Table("uniquify", Ledger, "Each uniquification job's ledger by job id, folded from medialane.uniquify.copies.")
WEBHOOKS = Table("webhooks", Delivery, "Each webhook delivery by job id, folded from medialane.webhooks; kept once done.")
# A small entry per deleted job: the status topic is read beside medialane.deletions, so a job's status events can
# come after its deletion, and would otherwise bring the deleted job back into the table. Kept for
# ``finished_entries_keep_seconds`` after the deletion, as a finished ledger is, then deleted.
DELETED = Table("deleted", DeletedJob, "Each deleted job by job id, from medialane.deletions; kept for a while.")

TABLES = (STATUS, UNIQUIFY, WEBHOOKS, DELETED)
