"""Webhook signing, backoff and delivery state, without Kafka; the guarded POST against a local server."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.urlguard import post
from schemas.errors import FetchFailed, UrlForbidden
from schemas.messages import ErrorInfo, Op, Status, WebhookAttempt, WebhookAttempted, WebhookOrder, WebhookView
from schemas.status_events import StatusEvent
from schemas.views import JobView
from schemas.settings import Settings
from sink import webhooks
from schemas.job_state import fold as fold_status

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(webhook_retry_seconds=10, webhook_retry_window=3600, webhook_timeout=1,
                    fetch_allow_hosts=("127.0.0.1",))  # fmt: skip
SECRET = "whsec_test"


def documented_verify():
    """The ``verify`` function of docs/api.md's "Verifying a webhook" snippet, as a reader would paste it."""
    section = API_DOC.read_text().split("### Verifying a webhook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


def test_signature_verifies_with_the_documented_snippet():
    verify = documented_verify()
    body = b'{"job_id":"j","status":"completed"}'
    header = webhooks.sign(SECRET, 1_700_000_000, body)
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    assert verify(SECRET, header, body, now=1_700_000_000 + 60)
    assert not verify("whsec_other", header, body, now=1_700_000_000)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_000)
    assert not verify(SECRET, header.replace("t=1700000000", "t=1700000001"), body, now=1_700_000_000)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # outside the tolerance window: a replay
    assert not verify(SECRET, "garbage", body, now=1_700_000_000)


def test_signature_is_stripe_style_hmac_of_timestamp_dot_body():
    # Known answer, computed independently: printf '1.{}' | openssl dgst -sha256 -hmac k
    assert webhooks.sign("k", 1, b"{}") == "t=1,v1=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"


def test_retry_delay_doubles_with_jitter_up_to_an_hour():
    assert [webhooks.retry_delay(n, 10, 0) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert webhooks.retry_delay(3, 10, 1) == 20  # full jitter takes half away, never more
    assert webhooks.retry_delay(30, 10, 0) == webhooks.MAX_RETRY_DELAY
    assert webhooks.retry_delay(10_000, 10, 0.5) == webhooks.MAX_RETRY_DELAY * 0.75


def view(status: Status = Status.COMPLETED, webhook: WebhookView | None = None) -> JobView:
    return JobView(job_id="j", status=status, percent=100, ops=[Op.METADATA], created_at=T0, updated_at=T0,
                   owner="abc", id="order-7", webhook=webhook)  # fmt: skip


def order() -> WebhookOrder:
    return webhooks.order(view(webhook=WebhookView(url="https://example.com/hook", next_attempt_at=T0)))


def outcome(number: int, seconds: float, status_code: int | None = None, error: str | None = None) -> WebhookAttempted:
    attempt = WebhookAttempt(at=T0 + timedelta(seconds=seconds), status_code=status_code,
                             error=ErrorInfo(code=error, message=error) if error else None)  # fmt: skip
    return WebhookAttempted(job_id="j", number=number, attempt=attempt)


def replay(*events, jitter: float = 0.0):
    delivery = None
    for event in events:
        delivery = webhooks.fold(delivery, event, 3, SETTINGS, jitter) or delivery
    return delivery


def test_order_carries_the_job_document_without_its_webhook():
    made = order()
    assert (made.job_id, made.url, made.owner, made.ended_at) == ("j", "https://example.com/hook", "abc", T0)
    assert "webhook" not in made.document
    assert made.document["id"] == "order-7"
    assert webhooks.body(made) == JobView.model_validate(made.document).model_dump_json(exclude={"webhook"}).encode()


def test_an_order_is_due_at_once_and_a_second_order_changes_nothing():
    delivery = webhooks.fold(None, order(), 3, SETTINGS, 0.0)
    assert (delivery.partition, delivery.state.next_attempt_at, delivery.state.attempts) == (3, T0, [])
    assert webhooks.due(delivery, T0) and not webhooks.due(delivery, T0 - timedelta(seconds=1))
    assert webhooks.fold(delivery, order(), 3, SETTINGS, 0.0) is None


def test_failures_are_retried_with_backoff_and_a_2xx_delivers():
    delivery = replay(order(), outcome(1, 1, status_code=500))
    assert delivery.state.next_attempt_at == T0 + timedelta(seconds=1 + 10)
    delivery = replay(order(), outcome(1, 1, status_code=500), outcome(2, 12, error="fetch_timeout"))
    assert delivery.state.next_attempt_at == T0 + timedelta(seconds=12 + 20)
    done = replay(order(), outcome(1, 1, status_code=500), outcome(2, 12, error="fetch_timeout"),
                  outcome(3, 33, status_code=204))  # fmt: skip
    assert done.state.delivered and done.state.next_attempt_at is None
    assert [a.status_code for a in done.state.attempts] == [500, None, 204]
    assert not webhooks.due(done, T0 + timedelta(days=2))


def test_an_outcome_seen_before_or_after_delivery_is_ignored():
    delivered = replay(order(), outcome(1, 1, status_code=200))
    assert webhooks.fold(delivered, outcome(1, 1, status_code=200), 3, SETTINGS, 0.0) is None
    assert webhooks.fold(delivered, outcome(2, 5, status_code=500), 3, SETTINGS, 0.0) is None
    assert webhooks.fold(None, outcome(1, 1, status_code=200), 3, SETTINGS, 0.0) is None


def test_retries_stop_at_the_window_and_an_unsigned_post_is_not_retried():
    last = replay(order(), outcome(1, 3590, status_code=503))
    assert last.state.next_attempt_at == T0 + timedelta(seconds=3600)  # the window's last moment still counts
    late = replay(order(), outcome(1, 3591, status_code=503))
    assert late.state.next_attempt_at is None and not late.state.delivered
    unsigned = replay(order(), outcome(1, 1, error="webhook_unsigned"))
    assert unsigned.state.next_attempt_at is None and not unsigned.state.delivered


def status(status: Status, seconds: int = 0, **fields) -> StatusEvent:
    return StatusEvent(job_id="j", status=status, at=T0 + timedelta(seconds=seconds), **fields)


def test_status_fold_shows_id_and_webhook_and_makes_it_due_when_the_job_ends():
    queued = fold_status(None, status(Status.QUEUED, ops=[Op.METADATA], client_id="order-7",
                                      webhook_url="https://example.com/hook"))  # fmt: skip
    assert queued.id == "order-7"
    assert queued.webhook == WebhookView(url="https://example.com/hook")
    assert not webhooks.needs_order(queued, status(Status.QUEUED))
    last = status(Status.PROCESSING, 5, op=Op.METADATA, result={"file": {}})
    done = fold_status(queued, last)
    assert done.status is Status.COMPLETED and done.webhook.next_attempt_at == T0 + timedelta(seconds=5)
    assert webhooks.needs_order(done, last)
    assert webhooks.needs_order(fold_status(done, last), last)  # a redelivered final event orders again


def test_status_fold_takes_the_delivery_state_even_on_a_final_job_and_never_goes_back():
    done = view(webhook=WebhookView(url="https://example.com/hook", next_attempt_at=T0))
    one = WebhookView(url="https://example.com/hook", attempts=[WebhookAttempt(at=T0, status_code=500)],
                      next_attempt_at=T0 + timedelta(seconds=10))  # fmt: skip
    two = one.model_copy(update={"attempts": [*one.attempts, WebhookAttempt(at=T0, status_code=200)],
                                 "delivered": True, "next_attempt_at": None})  # fmt: skip
    after_one = fold_status(done, status(Status.COMPLETED, webhook=one))
    assert after_one.webhook == one and after_one.status is Status.COMPLETED
    assert not webhooks.needs_order(after_one, status(Status.PROCESSING))  # tried already: no new order
    after_two = fold_status(after_one, status(Status.COMPLETED, webhook=two))
    assert fold_status(after_two, status(Status.COMPLETED, webhook=one)) == after_two


def test_a_job_without_webhook_orders_nothing():
    assert not webhooks.needs_order(view(), status(Status.PROCESSING))


@pytest.fixture
async def receiver():
    """A local server: ``/ok`` answers 200, ``/slow`` answers after the timeout, ``/redirect`` points elsewhere."""
    received = []

    async def ok(request: web.Request) -> web.Response:
        received.append((request.path, dict(request.headers), await request.read()))
        return web.Response(status=200)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SETTINGS.webhook_timeout + 1)
        return web.Response(status=200)

    async def redirect(request: web.Request) -> web.Response:
        received.append((request.path, dict(request.headers), await request.read()))
        raise web.HTTPTemporaryRedirect("/ok")

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/slow", slow)
    app.router.add_post("/redirect", redirect)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}", received
    await server.close()


async def test_guarded_post_sends_the_body_and_headers(receiver):
    base, received = receiver
    assert await post(f"{base}/ok", b'{"a":1}', {"Medialane-Signature": "t=1,v1=00"}, SETTINGS) == 200
    [(path, headers, body)] = received
    assert (path, body, headers["Medialane-Signature"]) == ("/ok", b'{"a":1}', "t=1,v1=00")


async def test_guarded_post_does_not_follow_redirects(receiver):
    base, received = receiver
    assert await post(f"{base}/redirect", b"{}", {}, SETTINGS) == 307
    assert [path for path, _, _ in received] == ["/redirect"]


async def test_guarded_post_times_out(receiver):
    base, _ = receiver
    with pytest.raises(FetchFailed) as failed:
        await post(f"{base}/slow", b"{}", {}, SETTINGS)
    assert failed.value.code == "fetch_timeout"


@pytest.mark.parametrize("url", ["http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://[::1]/hook",
                                 "ftp://example.com/hook", "http://2130706433/hook"])  # fmt: skip
async def test_guarded_post_refuses_what_the_guard_refuses(url):
    with pytest.raises(UrlForbidden):
        await post(url, b"{}", {}, Settings(webhook_timeout=1))
