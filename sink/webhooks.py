"""Webhooks: a finished job's document POSTed to the client's ``webhook_url``, signed, retried until delivered.

When a job ends, the status table orders its delivery on ``medialane.webhooks`` (``needs_order``,
``order``). The delivery stage keeps one ``Delivery`` per job in the ``webhooks`` table, folded by
``fold`` from the orders and from the outcome of each attempt: the order, and the state
``JobView.webhook`` shows. The retry timer of the worker owning the job's partition POSTs each due
delivery (``post``) through the URL guard and publishes the outcome back to the topic. A 2xx
delivers; anything else is retried after an exponential, jittered delay until
``webhook_retry_window`` after the job ended. An order for a job already known is ignored, so a
redelivered order never sends twice. Everything but ``post`` is pure; the agent and timer are in
sink/webhook_stage.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import datetime, timedelta

from adapters.urlguard import post as guarded_post
from schemas.errors import MedialaneError
from schemas.messages import ErrorInfo, WebhookAttempt, WebhookAttempted, WebhookOrder, WebhookView, utcnow
from schemas.status_events import StatusStep
from schemas.views import JobView
from schemas.settings import Settings
from schemas.tables import Delivery
from adapters.apikeys import KeyStore

SIGNATURE_HEADER = "Medialane-Signature"
# At most an hour between retries, so a receiver that comes back within the window hears within the hour.
MAX_RETRY_DELAY = 3600.0
# Doubling stops mattering long before this; the cap keeps 2**n a small float.
MAX_DOUBLINGS = 32


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Medialane-Signature`` header: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` (Stripe's scheme)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def body(order: WebhookOrder) -> bytes:
    return json.dumps(order.document, separators=(",", ":")).encode()


def retry_delay(retry: int, first: float, jitter: float) -> float:
    """Seconds before retry number ``retry`` (1: the first): ``first`` doubled each time, at most an hour;
    ``jitter`` (0 to 1) takes up to half of it away, so senders retrying together spread out."""
    delay = min(first * 2.0 ** min(retry - 1, MAX_DOUBLINGS), MAX_RETRY_DELAY)
    return delay * (1 - jitter / 2)


def needs_order(view: JobView, event: StatusStep) -> bool:
    """Whether the status table should order the webhook of ``view``, just folded from ``event``: the job
    has ended and its webhook was never tried. Asked on every event, not only the one that ended the
    job, so an order lost to a crash is made again; the delivery stage ignores one it already has."""
    return view.status.terminal and view.webhook is not None and not view.webhook.attempts and event.webhook is None


def order(view: JobView) -> WebhookOrder:
    assert view.webhook is not None
    return WebhookOrder(
        job_id=view.job_id, url=view.webhook.url, owner=view.owner,
        document=view.model_dump(mode="json", exclude={"webhook"}), ended_at=view.updated_at,
    )  # fmt: skip


def fold(delivery: Delivery | None, event: WebhookOrder | WebhookAttempted, partition: int, settings: Settings,
         jitter: float) -> Delivery | None:  # fmt: skip
    """The delivery after ``event``; None when the event changes nothing (an order for a job already
    known, an outcome already folded in or of a finished delivery)."""
    if isinstance(event, WebhookOrder):
        if delivery is not None:
            return None
        state = WebhookView(url=event.url, next_attempt_at=event.ended_at)
        return Delivery(order=event, state=state, partition=partition)
    if delivery is None or delivery.state.next_attempt_at is None or event.number != len(delivery.state.attempts) + 1:
        return None
    attempt = event.attempt
    attempts = [*delivery.state.attempts, attempt]
    delivered = attempt.status_code is not None and 200 <= attempt.status_code < 300
    next_at = None
    if not delivered and not (attempt.error and attempt.error.code == "webhook_unsigned"):
        candidate = attempt.at + timedelta(seconds=retry_delay(len(attempts), settings.webhook_retry_seconds, jitter))
        if candidate <= delivery.order.ended_at + timedelta(seconds=settings.webhook_retry_window):
            next_at = candidate
    state = WebhookView(url=delivery.state.url, delivered=delivered, attempts=attempts, next_attempt_at=next_at)
    return delivery.model_copy(update={"state": state})


def due(delivery: Delivery, now: datetime) -> bool:
    next_at = delivery.state.next_attempt_at
    return next_at is not None and next_at <= now


async def post(order: WebhookOrder, keys: KeyStore, settings: Settings) -> WebhookAttempt:
    """One signed POST of the order's document, and how it went."""
    at = utcnow()
    key = await asyncio.to_thread(keys.get, order.owner) if order.owner else None
    if key is None:
        error = ErrorInfo(code="webhook_unsigned", message="the job's API key is gone: nothing can sign the POST")
        return WebhookAttempt(at=at, error=error)
    payload = body(order)
    signature = sign(key.webhook_secret, int(at.timestamp()), payload)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
    try:
        status = await guarded_post(order.url, payload, headers, settings)
    except MedialaneError as exc:
        return WebhookAttempt(at=at, error=ErrorInfo(code=exc.code, message=exc.message))
    return WebhookAttempt(at=at, status_code=status)
