"""Webhook delivery: each job's delivery folded from its orders and attempts into the ``webhooks`` table, and
the timer that POSTs the due ones. What a delivery is and how it changes is pure, in sink/webhooks.py.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

from adapters.apikeys import KeyStore
from adapters.worker_app import WorkerApp
from schemas import tables, topics
from schemas.messages import Status, WebhookAttempted, WebhookEvent, utcnow
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


class Deliveries:
    """One worker's webhook deliveries: the table, the keys that sign, and which attempts it has POSTed."""

    def __init__(self, app: WorkerApp) -> None:
        self.settings = app.settings
        self.courier = app.courier
        self.table = app.table_of(tables.WEBHOOKS)
        self.keys = KeyStore(app.store)
        # The attempt number each delivery was last POSTed for, so a POST whose outcome is not folded yet is
        # not repeated.
        self.posted: dict[str, int] = {}

    async def fold_events(self, stream) -> None:
        """Folds orders and attempt outcomes into each job's delivery, and shows it in the job's status."""
        async for event, message in self.courier.messages(stream, WebhookEvent):
            key = message.event.job_id.encode()
            current = self.table.get(key)
            before = Delivery.model_validate_json(current) if current is not None else None
            after = fold(before, message.event, event.message.partition, self.settings, random.random())
            if after is None:
                continue
            self.table[key] = after.model_dump_json().encode()
            await self.courier.report(after.order.job_id, Status(after.order.document["status"]), webhook=after.state)

    async def post_due(self, partitions: set[int], now: datetime) -> None:
        """POSTs the due deliveries of ``partitions`` (a table's standby copy is never POSTed from)."""
        to_post = []
        for value in list(self.table.values()):
            delivery = Delivery.model_validate_json(value)
            job_id, number = delivery.order.job_id, len(delivery.state.attempts) + 1
            if delivery.state.next_attempt_at is None:
                self.posted.pop(job_id, None)
            elif delivery.partition in partitions and due(delivery, now) and self.posted.get(job_id) != number:
                self.posted[job_id] = number
                to_post.append((delivery, number))
        await asyncio.gather(*(self.post(delivery, number) for delivery, number in to_post))

    async def post(self, delivery: Delivery, number: int) -> None:
        attempt = await post(delivery.order, self.keys, self.settings)
        outcome = WebhookAttempted(job_id=delivery.order.job_id, number=number, attempt=attempt)
        await self.courier.publish(topics.WEBHOOKS, outcome.job_id, WebhookEvent(event=outcome))
