"""Webhook delivery: each job's delivery folded from its orders and attempts into the ``webhooks`` table, and
the timer that POSTs the due ones. What a delivery is and how it changes is pure, in sink/webhooks.py.
Two indexes beside the table (adapters/due.py) say which deliveries are due and which finished ones are old
enough to delete, so the timer never reads the table through.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from datetime import datetime, timedelta

from adapters.apikeys import KeyStore
from adapters.due import indexed
from adapters.worker_app import WorkerApp
from schemas import tables, topics
from schemas.messages import Message, Status, WebhookAttempted, WebhookEvent, WebhookView, utcnow
from schemas.tables import Delivery
from sink.webhooks import due, fold, post

# How often each worker looks for webhook deliveries due: a retry is at most this late.
WEBHOOK_TICK_SECONDS = 1.0


def register(app: WorkerApp) -> None:
    deliveries = Deliveries(app)

    @app.agent(app.topic_of(topics.WEBHOOKS))
    async def deliver_webhooks(stream):
        await deliveries.fold_events(stream)

    @app.timer(interval=WEBHOOK_TICK_SECONDS)
    async def retry_webhooks() -> None:
        await deliveries.post_due(app.active_partitions(topics.WEBHOOKS), utcnow())


class _OrderTimes(Message):
    ended_at: datetime


class DeliveryTimes(Message):
    """What the indexes read of a stored ``Delivery``: all but the order's document, which is most of an entry's
    bytes. Parsed without it, the indexes' rebuild after a start reads a day of deliveries about twice as fast
    (with both indexes built in one read, 1.3 s of a worker's restart at 50,000 jobs of history became ~0.3 s)."""

    order: _OrderTimes
    state: WebhookView
    partition: int


@functools.lru_cache(maxsize=1)
def delivery_times(value: bytes) -> DeliveryTimes:
    # Both indexes read each value, one right after the other (in the fold and in the rebuild): parsed once.
    return DeliveryTimes.model_validate_json(value)


def attempt_at(delivery: Delivery | DeliveryTimes) -> float | None:
    """When the delivery's next attempt is due; None once it is delivered or given up."""
    next_at = delivery.state.next_attempt_at
    return next_at.timestamp() if next_at is not None else None


def prune_at(delivery: Delivery | DeliveryTimes, keep: timedelta) -> float | None:
    """When a finished delivery is deleted: ``keep`` after its last attempt (or its order), so a redelivered order
    or outcome is still recognised until then."""
    if delivery.state.next_attempt_at is not None:
        return None
    attempts = delivery.state.attempts
    return ((attempts[-1].at if attempts else delivery.order.ended_at) + keep).timestamp()


class Deliveries:
    """One worker's webhook deliveries: the table, the keys that sign, the deliveries due, those to delete."""

    def __init__(self, app: WorkerApp) -> None:
        self.settings = app.settings
        self.courier = app.courier
        self.table = app.table_of(tables.WEBHOOKS)
        self.keys = KeyStore(app.store)
        self.due_at = indexed(delivery_times, attempt_at)
        keep = timedelta(seconds=app.settings.finished_entries_keep_seconds)
        self.expired_at = indexed(delivery_times, prune_at, keep)
        # A delivery leaves ``due`` when it is POSTed and comes back when its outcome is folded with a next attempt,
        # so a POST whose outcome is not folded yet is not repeated.
        self.due = app.due_index(tables.WEBHOOKS, self.due_at, "attempt")
        self.expired = app.due_index(tables.WEBHOOKS, self.expired_at, "prune")

    async def fold_events(self, stream) -> None:
        """Folds orders and attempt outcomes into each job's delivery, and shows it in the job's status."""
        async for event, message in self.courier.messages(stream, WebhookEvent):
            # Deleted from within the partition's own stream, so the changelog's tombstone lands in its partition.
            for expired in self.expired.pop_due(time.time(), {event.message.partition}):
                self.table.pop(expired, None)
            key = message.event.job_id.encode()
            current = self.table.get(key)
            before = Delivery.model_validate_json(current) if current is not None else None
            after = fold(before, message.event, event.message.partition, self.settings, random.random())
            if after is None:
                continue
            value = after.model_dump_json().encode()
            self.table[key] = value
            self.due.set(key, self.due_at(value))
            self.expired.set(key, self.expired_at(value))
            await self.courier.report(after.order.job_id, Status(after.order.document["status"]), webhook=after.state)

    async def post_due(self, partitions: set[int], now: datetime) -> None:
        """POSTs the due deliveries of ``partitions`` (a table's standby copy is never POSTed from)."""
        to_post = []
        for key in self.due.pop_due(now.timestamp(), partitions):
            value = self.table.get(key)
            delivery = Delivery.model_validate_json(value) if value is not None else None
            if delivery is not None and due(delivery, now):
                to_post.append((delivery, len(delivery.state.attempts) + 1))
        await asyncio.gather(*(self.post(delivery, number) for delivery, number in to_post))

    async def post(self, delivery: Delivery, number: int) -> None:
        attempt = await post(delivery.order, self.keys, self.settings)
        outcome = WebhookAttempted(job_id=delivery.order.job_id, number=number, attempt=attempt)
        await self.courier.publish(topics.WEBHOOKS, outcome.job_id, WebhookEvent(event=outcome))
