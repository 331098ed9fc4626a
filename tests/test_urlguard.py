"""The URL guard: what check_url refuses, and what fetch does against a local server."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings as hypothesis_settings, strategies as st

from adapters.urlguard import check_url, fetch
from schemas.errors import FetchFailed, HostUnresolvable, UrlForbidden
from schemas.settings import Settings

CAP = 1000
HITS = web.AppKey("hits", list[str])
RELEASE = web.AppKey("release", asyncio.Event)


def make_settings(**overrides) -> Settings:
    return Settings(
        **{"fetch_allow_hosts": ("127.0.0.1",), "fetch_max_bytes": CAP, "fetch_total_timeout": 2.0, **overrides}
    )


class FakeDns:
    """Answers chosen names from a script, one answer per lookup; the last answer repeats."""

    def __init__(self, real) -> None:
        self._real = real
        self.answers: dict[str, list[tuple[str, ...]]] = {}
        self.asked: list[str] = []

    async def getaddrinfo(self, host, port, **kwargs):
        if host not in self.answers:
            return await self._real(host, port, **kwargs)
        self.asked.append(host)
        script = self.answers[host]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [_addrinfo(address, port) for address in answer]


def _addrinfo(address: str, port: int):
    if ipaddress.ip_address(address).version == 4:
        return socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)
    return socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0)


@pytest.fixture
async def dns(monkeypatch) -> FakeDns:
    loop = asyncio.get_running_loop()
    fake = FakeDns(loop.getaddrinfo)
    monkeypatch.setattr(loop, "getaddrinfo", fake.getaddrinfo)
    return fake


# --- check_url ---------------------------------------------------------------------------------

HOSTILE = [
    ("ftp://example.com/a.jpg", "scheme 'ftp'"),
    ("file:///etc/passwd", "scheme 'file'"),
    ("gopher://example.com/", "scheme 'gopher'"),
    ("javascript:alert(1)", "scheme 'javascript'"),
    ("example.com/a.jpg", "scheme ''"),
    ("http:///a.jpg", "has no host"),
    ("http://user:secret@example.com/", "credentials"),
    ("http://user@example.com/", "credentials"),
    ("http://exa mple.com\\@x/", "not a valid URL"),
    ("http://127.0.0.1/", "127.0.0.1 (loopback)"),
    ("http://127.8.9.10:8080/", "127.8.9.10 (loopback)"),
    ("http://localhost/", "127.0.0.1 (loopback)"),
    ("http://LOCALHOST:8080/", "127.0.0.1 (loopback)"),
    ("http://[::1]/", "::1 (loopback)"),
    ("http://0.0.0.0/", "0.0.0.0 (unspecified)"),
    ("http://[::]/", ":: (unspecified)"),
    ("http://10.0.0.1/", "10.0.0.1 (private)"),
    ("http://172.16.5.4/", "172.16.5.4 (private)"),
    ("http://192.168.1.1/", "192.168.1.1 (private)"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 (link-local"),
    ("http://100.64.0.1/", "100.64.0.1 (shared CGNAT space)"),
    ("http://224.0.0.1/", "224.0.0.1 (multicast)"),
    ("http://255.255.255.255/", "255.255.255.255 (reserved or broadcast)"),
    ("http://240.0.0.1/", "240.0.0.1 (reserved or broadcast)"),
    ("http://192.0.2.7/", "192.0.2.7 (documentation)"),
    ("http://198.18.0.1/", "198.18.0.1 (private)"),
    ("http://[fc00::1]/", "fc00::1 (private)"),
    ("http://[fd12:3456::1]/", "fd12:3456::1 (private)"),
    ("http://[fe80::1]/", "fe80::1 (link-local"),
    ("http://[fe80::1%25lo]/", "IPv6 zone index"),
    ("http://[fe80::1%25eth0]:8080/", "IPv6 zone index"),
    ("http://[fec0::1]/", "fec0::1 (site-local)"),
    ("http://[ff02::1]/", "ff02::1 (multicast)"),
    ("http://[2001:db8::1]/", "2001:db8::1 (documentation)"),
    ("http://[::ffff:127.0.0.1]/", "embeds 127.0.0.1 (loopback)"),
    ("http://[::ffff:7f00:1]/", "embeds 127.0.0.1 (loopback)"),
    ("http://[::ffff:169.254.169.254]/", "embeds 169.254.169.254 (link-local"),
    ("http://[64:ff9b::a00:1]/", "embeds 10.0.0.1 (private)"),
    ("http://[64:ff9b::7f00:1]/", "embeds 127.0.0.1 (loopback)"),
    ("http://[2002:7f00:1::]/", "embeds 127.0.0.1 (loopback)"),
    ("http://[::7f00:1]/", "::7f00:1 (reserved"),
    ("http://2130706433/", "unusual IPv4 spelling"),
    ("http://0177.0.0.1/", "unusual IPv4 spelling"),
    ("http://0x7f.1/", "unusual IPv4 spelling"),
    ("http://0x7f000001/", "unusual IPv4 spelling"),
    ("http://127.1/", "unusual IPv4 spelling"),
    ("http://10.1/", "unusual IPv4 spelling"),
    ("http://127.0.0.1./", "unusual IPv4 spelling"),
]


@pytest.mark.parametrize(("url", "why"), HOSTILE)
async def test_check_url_refuses_hostile_url(url: str, why: str) -> None:
    with pytest.raises(UrlForbidden) as refused:
        await check_url(url, Settings())
    assert refused.value.code == "url_forbidden"
    assert why in refused.value.message


async def test_check_url_refuses_a_host_when_any_address_is_private(dns: FakeDns) -> None:
    dns.answers["mixed.example"] = [("93.184.216.34", "10.0.0.5")]
    with pytest.raises(UrlForbidden, match=r"mixed\.example is refused: 10\.0\.0\.5 \(private\)") as refused:
        await check_url("https://mixed.example/a.jpg", Settings())
    assert refused.value.code == "url_forbidden"


async def test_check_url_refuses_a_host_that_does_not_resolve(dns: FakeDns) -> None:
    dns.answers["gone.example"] = [()]
    with pytest.raises(HostUnresolvable, match="does not resolve") as refused:
        await check_url("https://gone.example/", Settings())
    assert refused.value.code == "dns_failed"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://8.8.8.8/a.jpg", "8.8.8.8"),
        ("https://[2606:4700::1111]:8443/", "2606:4700::1111"),
        ("http://[::ffff:8.8.8.8]/", "::ffff:808:808"),
        # What DNS64 answers for an IPv4-only host on an IPv6-only network.
        ("http://[64:ff9b::808:808]/", "64:ff9b::808:808"),
        ("https://public.example/a.jpg", "93.184.216.34"),
    ],
)
async def test_check_url_pins_a_public_address(dns: FakeDns, url: str, address: str) -> None:
    dns.answers["public.example"] = [("93.184.216.34", "2606:2800:220:1::1")]
    target = await check_url(url, Settings())
    assert target.address == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    ("allow", "url", "address"),
    [
        (("127.0.0.1",), "http://127.0.0.1:8080/", "127.0.0.1"),
        (("LocalHost",), "http://localhost/", "127.0.0.1"),
        (("10.0.0.0/8",), "http://10.1.2.3/", "10.1.2.3"),
        (("127.0.0.0/8",), "http://localhost/", "127.0.0.1"),
    ],
)
async def test_allow_list_exempts_matching_targets(allow: tuple[str, ...], url: str, address: str) -> None:
    target = await check_url(url, Settings(fetch_allow_hosts=allow))
    assert target.address == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    ("allow", "url", "why"),
    [
        # A host-name entry covers that name only, not another name for the same address.
        (("127.0.0.1",), "http://localhost/", "127.0.0.1 (loopback)"),
        (("127.0.0.1",), "http://[::ffff:127.0.0.1]/", "embeds 127.0.0.1"),
        (("10.0.0.0/8",), "http://192.168.0.1/", "192.168.0.1 (private)"),
        (("127.0.0.0/8",), "http://[::1]/", "::1 (loopback)"),
        (("127.0.0.1",), "ftp://127.0.0.1/", "scheme 'ftp'"),
        (("127.0.0.1",), "http://user:pw@127.0.0.1/", "credentials"),
        (("127.0.0.0/8",), "http://127.1/", "unusual IPv4 spelling"),
    ],
)
async def test_allow_list_exempts_nothing_else(allow: tuple[str, ...], url: str, why: str) -> None:
    with pytest.raises(UrlForbidden) as refused:
        await check_url(url, Settings(fetch_allow_hosts=allow))
    assert refused.value.code == "url_forbidden"
    assert why in refused.value.message


def _refused(url: str) -> bool:
    try:
        asyncio.run(check_url(url, Settings()))
    except UrlForbidden:
        return True
    return False


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.ip_addresses(v=4))
def test_ipv6_forms_embedding_an_ipv4_address_get_its_verdict(address: ipaddress.IPv4Address) -> None:
    embedded = int(address)
    forms = [
        ipaddress.IPv6Address((0xFFFF << 32) | embedded),
        ipaddress.IPv6Address((0x0064FF9B << 96) | embedded),
        ipaddress.IPv6Address((0x2002 << 112) | (embedded << 80)),
    ]
    verdict = _refused(f"http://{address}/")
    assert [_refused(f"http://[{form}]/") for form in forms] == [verdict] * len(forms)


# --- fetch -------------------------------------------------------------------------------------


@web.middleware
async def _record(request: web.Request, handler):
    request.app[HITS].append(request.path)
    return await handler(request)


async def _file(request: web.Request) -> web.Response:
    return web.Response(body=b"hello", content_type="text/plain")


async def _attachment(request: web.Request) -> web.Response:
    return web.Response(body=b"x", headers={"Content-Disposition": 'attachment; filename="../../.bashrc"'})


async def _redirect(request: web.Request) -> web.Response:
    left = int(request.match_info["left"])
    if left == 0:
        return web.Response(text="done")
    # A relative Location, resolved against the current URL.
    raise web.HTTPFound(str(left - 1))


async def _redirect_to(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["location"])


async def _echo_host(request: web.Request) -> web.Response:
    return web.Response(text=request.host)


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    size = int(request.match_info["size"])
    for start in range(0, size, 100):
        await response.write(b"a" * min(100, size - start))
    await response.write_eof()
    return response


async def _claims(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = int(request.match_info["size"])
    await response.prepare(request)
    await request.app[RELEASE].wait()
    return response


async def _gzip_bomb(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(bytes(50 * CAP)), headers={"Content-Encoding": "gzip"})


async def _slow(request: web.Request) -> web.Response:
    await request.app[RELEASE].wait()
    return web.Response(text="late")


@pytest.fixture(scope="module")
async def server():
    app = web.Application(middlewares=[_record])
    app[HITS] = []
    app[RELEASE] = asyncio.Event()
    app.router.add_get("/files/{name}", _file)
    app.router.add_get("/attachment", _attachment)
    app.router.add_get("/redirect/{left}", _redirect)
    app.router.add_get("/to", _redirect_to)
    app.router.add_get("/echo-host", _echo_host)
    app.router.add_get("/chunked/{size}", _chunked)
    app.router.add_get("/claims/{size}", _claims)
    app.router.add_get("/gzip-bomb", _gzip_bomb)
    app.router.add_get("/slow", _slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    app[RELEASE].set()
    await server.close()


def url_of(server: TestServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_fetch_returns_body_type_and_filename(server: TestServer) -> None:
    fetched = await fetch(url_of(server, "/files/report%20v2.txt"), make_settings())
    assert fetched.body == b"hello"
    assert fetched.content_type == "text/plain"
    assert fetched.filename == "report v2.txt"
    assert fetched.url == url_of(server, "/files/report%20v2.txt")


async def test_fetch_sanitises_the_content_disposition_filename(server: TestServer) -> None:
    fetched = await fetch(url_of(server, "/attachment"), make_settings())
    assert fetched.filename == "bashrc"


async def test_fetch_follows_five_redirects(server: TestServer) -> None:
    fetched = await fetch(url_of(server, "/redirect/5"), make_settings())
    assert fetched.body == b"done"
    assert fetched.url == url_of(server, "/redirect/0")


async def test_fetch_refuses_a_sixth_redirect(server: TestServer) -> None:
    with pytest.raises(FetchFailed, match="too many redirects") as failed:
        await fetch(url_of(server, "/redirect/6"), make_settings())
    assert failed.value.code == "fetch_failed"


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://localhost:{port}/never", "127.0.0.1 (loopback)"),
        ("http://10.0.0.1/never", "10.0.0.1 (private)"),
        ("http://[::ffff:127.0.0.1]:{port}/never", "embeds 127.0.0.1"),
        ("file:///etc/passwd", "scheme 'file'"),
    ],
)
async def test_fetch_rechecks_every_redirect_hop(server: TestServer, location: str, why: str) -> None:
    hop = location.format(port=server.port)
    with pytest.raises(UrlForbidden) as refused:
        await fetch(url_of(server, f"/to?location={hop}"), make_settings())
    assert refused.value.code == "url_forbidden"
    assert why in refused.value.message
    assert "/never" not in server.app[HITS]


async def test_fetch_reads_a_chunked_body_up_to_the_cap(server: TestServer) -> None:
    fetched = await fetch(url_of(server, f"/chunked/{CAP}"), make_settings())
    assert len(fetched.body) == CAP


async def test_fetch_stops_a_chunked_body_over_the_cap(server: TestServer) -> None:
    with pytest.raises(FetchFailed) as failed:
        await fetch(url_of(server, f"/chunked/{CAP + 1}"), make_settings())
    assert failed.value.code == "fetch_too_large"


async def test_fetch_fails_early_on_a_content_length_over_the_cap(server: TestServer) -> None:
    # The server never sends the body: only the header can make this fail before the deadline.
    with pytest.raises(FetchFailed) as failed:
        await fetch(url_of(server, f"/claims/{CAP + 1}"), make_settings())
    assert failed.value.code == "fetch_too_large"


async def test_fetch_caps_the_decompressed_body(server: TestServer) -> None:
    with pytest.raises(FetchFailed) as failed:
        await fetch(url_of(server, "/gzip-bomb"), make_settings())
    assert failed.value.code == "fetch_too_large"


async def test_fetch_times_out_on_a_slow_server(server: TestServer) -> None:
    with pytest.raises(FetchFailed) as failed:
        async with asyncio.timeout(2):
            await fetch(url_of(server, "/slow"), make_settings(fetch_total_timeout=0.2))
    assert failed.value.code == "fetch_timeout"


async def test_fetch_fails_on_an_error_status(server: TestServer) -> None:
    with pytest.raises(FetchFailed, match="HTTP 404") as failed:
        await fetch(url_of(server, "/nothing-here"), make_settings())
    assert failed.value.code == "fetch_http_error"


async def test_fetch_ignores_proxy_settings_from_the_environment(server: TestServer, monkeypatch) -> None:
    # A proxy would make the connection, to wherever it likes.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    fetched = await fetch(url_of(server, "/files/a.txt"), make_settings())
    assert fetched.body == b"hello"


async def test_fetch_fails_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed) as failed:
        await fetch(f"http://127.0.0.1:{port}/", make_settings())
    assert failed.value.code == "fetch_refused"


async def test_fetch_connects_to_the_checked_address_despite_rebinding(server: TestServer, dns: FakeDns) -> None:
    # The second answer is what a rebinding attacker would serve once the check has passed.
    dns.answers["rebind.example"] = [("127.0.0.1",), ("10.0.0.1",)]
    settings = make_settings(fetch_allow_hosts=("127.0.0.1/32",), fetch_connect_timeout=0.5)
    fetched = await fetch(f"http://rebind.example:{server.port}/echo-host", settings)
    assert dns.asked == ["rebind.example"]
    assert fetched.body == f"rebind.example:{server.port}".encode()
