"""Each way a fetch can fail, against servers on this machine: its own code and a message naming what happened.

A name under the reserved ``.invalid`` TLD is asked of this machine's own resolver, which answers that it
does not exist without any outside network.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.urlguard import check_url, fetch, post
from schemas.errors import FetchFailed, HostUnresolvable, MedialaneError, UrlForbidden
from schemas.settings import Settings

CAP = 1000
STOP = web.AppKey("stop", asyncio.Event)


def make_settings(**overrides) -> Settings:
    return Settings(**{"fetch_allow_hosts": ("127.0.0.1",), "fetch_max_bytes": CAP, "fetch_total_timeout": 1.0,
                       "webhook_timeout": 1.0, **overrides})  # fmt: skip


async def _hang(request: web.Request) -> web.StreamResponse:
    await request.app[STOP].wait()
    return web.Response()


def _answer(status: int, body: bytes = b""):
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, body=body)

    return handler


@pytest.fixture
async def server():
    app = web.Application()
    app[STOP] = asyncio.Event()
    app.router.add_route("*", "/hang", _hang)
    app.router.add_get("/missing", _answer(404))
    app.router.add_route("*", "/broken", _answer(500))
    app.router.add_get("/large", _answer(200, b"x" * (CAP + 1)))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    app[STOP].set()
    await server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _failure(url: str) -> MedialaneError:
    with pytest.raises(MedialaneError) as failed:
        async with asyncio.timeout(5):
            await fetch(url, make_settings())
    return failed.value


async def test_a_refused_connection(server: TestServer) -> None:
    port = _free_port()
    failed = await _failure(f"http://127.0.0.1:{port}/a.jpg")
    assert (type(failed), failed.code, failed.status) == (FetchFailed, "fetch_refused", 502)
    assert failed.message == f"127.0.0.1:{port} (127.0.0.1) refused the connection"


async def test_a_server_that_hangs_until_the_deadline(server: TestServer) -> None:
    failed = await _failure(f"http://127.0.0.1:{server.port}/hang")
    assert (failed.code, failed.message) == ("fetch_timeout", f"fetching http://127.0.0.1:{server.port}/hang took longer than 1.0s")


async def test_a_tls_handshake_with_a_plain_http_port(server: TestServer) -> None:
    failed = await _failure(f"https://127.0.0.1:{server.port}/a.jpg")
    assert failed.code == "fetch_tls_failed"
    assert failed.message.startswith(f"the TLS handshake with https://127.0.0.1:{server.port}/a.jpg failed")


async def test_a_body_over_the_limit(server: TestServer) -> None:
    failed = await _failure(f"http://127.0.0.1:{server.port}/large")
    assert (failed.code, failed.message) == ("fetch_too_large", f"http://127.0.0.1:{server.port}/large is larger than the {CAP}-byte limit")


@pytest.mark.parametrize(("path", "status"), [("/missing", "404 Not Found"), ("/broken", "500 Internal Server Error")])
async def test_an_error_status(server: TestServer, path: str, status: str) -> None:
    failed = await _failure(f"http://127.0.0.1:{server.port}{path}")
    assert (failed.code, failed.message) == ("fetch_http_error", f"http://127.0.0.1:{server.port}{path} answered HTTP {status}")


async def test_a_name_that_does_not_resolve() -> None:
    failed = await _failure("http://no-such-host.invalid/a.jpg")
    assert (type(failed), failed.code, failed.status) == (HostUnresolvable, "dns_failed", 422)
    assert failed.message.startswith("host no-such-host.invalid does not resolve")


async def test_an_ipv6_zone_index_is_refused_for_what_it_is() -> None:
    with pytest.raises(UrlForbidden) as refused:
        await check_url("http://[fe80::1%25lo]/a.jpg", make_settings())
    assert refused.value.message == "host fe80::1%25lo carries an IPv6 zone index, which names a local network interface"


@pytest.mark.parametrize(("where", "code"), [("refused", "fetch_refused"), ("/hang", "fetch_timeout"),
                                             ("no-such-host.invalid", "dns_failed")])  # fmt: skip
async def test_a_webhook_post_fails_with_the_same_codes(server: TestServer, where: str, code: str) -> None:
    urls = {"refused": f"http://127.0.0.1:{_free_port()}/hook", "/hang": f"http://127.0.0.1:{server.port}/hang",
            "no-such-host.invalid": "http://no-such-host.invalid/hook"}  # fmt: skip
    with pytest.raises(MedialaneError) as failed:
        async with asyncio.timeout(5):
            await post(urls[where], b"{}", {}, make_settings())
    assert failed.value.code == code


async def test_a_webhook_post_answered_with_an_error_status_returns_it(server: TestServer) -> None:
    # A webhook's receiver answering 500 is an answer, retried by the courier, not a failed connection.
    assert await post(f"http://127.0.0.1:{server.port}/broken", b"{}", {}, make_settings()) == 500
