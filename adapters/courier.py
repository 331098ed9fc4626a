"""How messages enter and leave every stage: validated on the way in, keyed by job id on the way out.

A message that does not validate is a poison message: it goes to the dead-letter topic with the
reason and the stage moves on, so one bad message never blocks a partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import faust
import faust.streams

from pydantic import ValidationError

from schemas.errors import MedialaneError
from schemas.job_state import queued
from schemas.messages import (
    CopyOrder, DeadLetter, ErrorInfo, JobRecord, JobRequest, Message, Op, Status, UniquifyJob, WebhookView,
    is_job_id, utcnow,
)
from schemas.status_events import StatusEvent
from schemas.topics import COPY_TASKS, DLQ, STATUS, Topic
from schemas.uniquify import CopyTask

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
DEAD_LETTER_PAYLOAD_LIMIT = 64 * 1024
# How long publishes may be held back (Courier.holding): a short job's status events then go out together
# with its end, and a long one shows it is being processed this soon.
HOLD_SECONDS = 0.5


class _Held:
    """What one block publishes, held back in order until released."""

    def __init__(self, send: Callable[[Topic, str, bytes], Any]) -> None:
        self.send = send
        self.pending: list[tuple[Topic, str, bytes]] = []
        self.released = False
        self.lock = asyncio.Lock()

    async def release(self) -> None:
        # Under the lock, so that the timer's release and the job's end never send out of order; what is
        # published while this sends joins the queue, and only an empty queue ends the hold.
        async with self.lock:
            while self.pending:
                await self.send(*self.pending.pop(0))
            self.released = True


_HELD: ContextVar[_Held | None] = ContextVar("held", default=None)


class Courier:
    """Sends and receives for the stages of one worker app (``topic_of`` names its Faust topics)."""

    def __init__(self, topic_of: Callable[[Topic], faust.TopicT], partitions: int) -> None:
        self.topic_of = topic_of
        self.partitions = partitions

    async def publish(self, topic: Topic, job_id: str, message: Message) -> None:
        value = message.model_dump_json().encode()
        held = _HELD.get()
        if held is not None and not held.released:
            held.pending.append((topic, job_id, value))
            return
        await self._send(topic, job_id, value)

    async def _send(self, topic: Topic, job_id: str, value: bytes) -> None:
        await self.topic_of(topic).send(key=job_id.encode(), value=value)

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """Holds back what the block publishes (its tasks included), in order, until it ends or ``HOLD_SECONDS`` pass.

        Jobs that end within the hold publish their queued, processing and terminal events and their results
        together: one produce request, one batch per partition (one object on the embedded broker) where each
        job made two or more, and every reader of a topic reads it once. A block left by an exception publishes
        nothing it held: its messages were not acknowledged, and are taken again."""
        held = _Held(self._send)
        token = _HELD.set(held)
        loop = asyncio.get_running_loop()
        releasing: list[asyncio.Task] = []
        timer = loop.call_later(HOLD_SECONDS, lambda: releasing.append(loop.create_task(held.release())))
        try:
            yield
        finally:
            _HELD.reset(token)
            timer.cancel()
        await held.release()

    async def messages(self, stream, model: type[M]) -> AsyncIterator[tuple[Any, M]]:
        """Each event of ``stream`` with its value as ``model``; one that does not validate is dead-lettered
        and skipped."""
        async for event in stream.events():
            message = await self.decode(event, model)
            if message is not None:
                yield event, message

    async def batches(self, stream, model: type[M], size: int, within: float) -> AsyncIterator[list[M]]:
        """The messages of ``stream`` as ``model``, up to ``size`` at a time: those that came within ``within``
        seconds of each other. Each is acknowledged once its batch's block is done; one that does not validate
        is dead-lettered and left out."""
        async for taken in self.event_batches(stream, model, size, within):
            yield [message for _, message in taken]

    async def event_batches(
        self, stream, model: type[M], size: int, within: float
    ) -> AsyncIterator[list[tuple[Any, M]]]:
        """``batches``, each message with its event (``as_current`` makes one the event a table write is for)."""
        async for events in stream.batches(size, within):
            decoded = [(event, await self.decode(event, model)) for event in events]
            if taken := [(event, message) for event, message in decoded if message is not None]:
                yield taken

    async def decode(self, event, model: type[M]) -> M | None:
        """The event's value as ``model``, or None after dead-lettering it."""
        try:
            return model.model_validate_json(event.value)
        except ValidationError as exc:
            await self.dead_letter(event, f"does not match {model.__name__}: {exc.errors(include_url=False)[:3]}")
            return None

    async def dead_letter(self, event, reason: str) -> None:
        message = event.message
        key = message.key.decode(errors="replace") if message.key is not None else None
        payload = (event.value or b"")[:DEAD_LETTER_PAYLOAD_LIMIT].decode(errors="replace")
        log.warning("dead letter from %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
        letter = DeadLetter(
            topic=message.topic, partition=message.partition, offset=message.offset,
            key=key, reason=reason, payload=payload, at=utcnow(),
        )  # fmt: skip
        await self.topic_of(DLQ).send(key=message.key, value=letter.model_dump_json().encode())
        job_id = (key or "").split("/")[0]
        if is_job_id(job_id) and message.topic != STATUS.name:
            # The key still names the job (copy orders are keyed job/source/copy/attempt): end it with the
            # reason rather than leave it unfinished forever.
            failure = MedialaneError(f"a {message.topic} message was unreadable: {reason}", code="invalid_message")
            await self.report_failure(job_id, failure)

    async def report(
        self,
        job_id: str,
        status: Status,
        *,
        op: Op | None = None,
        result: dict | None = None,
        percent: int | None = None,
        webhook: WebhookView | None = None,
    ) -> None:
        event = StatusEvent(job_id=job_id, status=status, at=utcnow(), op=op, result=result, percent=percent,
                            webhook=webhook)  # fmt: skip
        await self.publish(STATUS, job_id, event)

    async def report_taken(self, job: JobRequest | UniquifyJob) -> None:
        """A job's queued event (what its request says of it), then processing: published by the stage that takes
        the job, not by ingest, so that one process produces a job's status partition. The embedded broker
        numbers a batch before it stores it, and a fetch between two producers' batches skips the later-stored
        one for good (docs/topics.md)."""
        await self.publish(STATUS, job.job_id, queued(JobRecord.model_validate(job.model_dump())))
        await self.report(job.job_id, Status.PROCESSING)

    async def report_failure(self, job_id: str, exc: Exception) -> None:
        event = StatusEvent(job_id=job_id, status=Status.FAILED, at=utcnow(), error=error_info(exc))
        await self.publish(STATUS, job_id, event)

    async def order_copy(self, job: UniquifyJob, task: CopyTask) -> None:
        source = job.sources[task.source_index]
        order = CopyOrder(job_id=job.job_id, task=task, params=job.params, source_key=source.object_key,
                          donor_key=job.donor_key)  # fmt: skip
        key = f"{job.job_id}/{task.source_index}/{task.copy_index}/{task.attempt}"
        partition = copy_partition(job, task, self.partitions)
        value = order.model_dump_json().encode()
        await self.topic_of(COPY_TASKS).send(key=key.encode(), value=value, partition=partition)


@contextlib.contextmanager
def as_current(event) -> Iterator[None]:
    """Makes ``event`` Faust's current event within the block. A table write goes to the changelog partition
    and the local store partition of the current event, and an agent taking batches (adapters/batching_stream.py)
    has none: it names, for each key it writes, an event of that key's partition."""
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


def error_info(exc: Exception) -> ErrorInfo:
    if isinstance(exc, MedialaneError):
        return ErrorInfo(code=exc.code, message=exc.message)
    # A bug or an outage: the job still ends with a reason, and the traceback is in the log.
    log.error("unexpected failure", exc_info=exc)
    return ErrorInfo(code="internal_error", message=f"{type(exc).__name__}: {exc}")


def copy_partition(job: UniquifyJob, task: CopyTask, partitions: int) -> int:
    """A job's copies go round the partitions in turn, from a place the job id sets, so every worker gets
    an equal share of them: hashing 30 copy keys onto 4 partitions leaves one worker 20 now and then."""
    start = int(job.job_id.replace("-", "")[:8], 16)
    ordinal = task.source_index * job.params.copies + task.copy_index - 1 + task.attempt
    return (start + ordinal) % partitions
