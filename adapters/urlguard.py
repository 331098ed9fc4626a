"""The one guard every URL medialane connects to on a client's behalf goes through.

``check_url`` parses the URL, resolves its host once and refuses any address that is not public
(SSRF). ``fetch`` then connects only to that checked address, re-checking every redirect hop, so
neither a second DNS answer (rebinding) nor a redirect can steer the connection somewhere else;
``post`` (webhooks) connects the same way and never follows a redirect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from media.names import safe_name
from schemas.errors import FetchFailed, HostUnresolvable, UrlForbidden
from schemas.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_FALLBACK_FILENAME = "download"

# The last label of a host that URL parsers (WHATWG, inet_aton) read as an IPv4 number.
_IPV4_NUMBER = re.compile(r"\d+|0x[0-9a-f]*", re.IGNORECASE)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_DOCUMENTATION = tuple(
    ipaddress.ip_network(net)
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
)

# Checked in order so the message names the most specific reason; ``is_private`` last catches every
# other special-purpose range the running Python knows about (RFC 1918, unique-local fc00::/7...).
_REFUSED = (
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    # 169.254.169.254, the cloud metadata service, is the classic SSRF prize.
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("site-local", lambda a: a in _SITE_LOCAL),
    ("shared CGNAT space", lambda a: a in _CGNAT),
    ("documentation", lambda a: any(a in net for net in _DOCUMENTATION)),
    ("reserved or broadcast", lambda a: a.is_reserved),
    ("private", lambda a: a.is_private),
)


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, and the one address a connection to it may use."""

    url: URL
    address: IPAddress


@dataclass(frozen=True)
class Fetched:
    """A fetched body; ``url`` is where the redirects ended; ``filename`` went through ``safe_name``."""

    body: bytes
    url: str
    content_type: str
    filename: str


async def check_url(url: str, settings: Settings) -> Target:
    """Refuse ``url`` (``UrlForbidden``) unless it is http(s) and its host resolves only to public addresses.

    A host that does not resolve raises ``HostUnresolvable`` (``dns_failed``), a resolution slower than
    ``fetch_connect_timeout`` ``FetchFailed`` (``fetch_timeout``).
    """
    parsed = _parse(url)
    addresses = await _resolve(parsed.raw_host, parsed.port, settings.fetch_connect_timeout)
    for address in addresses:
        reason = _refusal(address)
        if reason is not None and not _allowed(parsed.raw_host, address, settings.fetch_allow_hosts):
            raise UrlForbidden(f"host {parsed.raw_host} is refused: {reason} is not a public address")
    return Target(parsed, addresses[0])


def _parse(url: str) -> URL:
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise UrlForbidden(f"{url!r} is not a valid URL: {exc}") from exc
    if parsed.scheme not in _SCHEMES:
        raise UrlForbidden(f"scheme {parsed.scheme!r} is not allowed; use http or https")
    if parsed.user is not None or parsed.password is not None:
        raise UrlForbidden("credentials in the URL are not allowed")
    if not parsed.raw_host:
        raise UrlForbidden(f"{url!r} has no host")
    if "%" in parsed.raw_host:
        # A zone index (fe80::1%25eth0) picks an interface of this machine to reach a link-local address.
        raise UrlForbidden(f"host {parsed.raw_host} carries an IPv6 zone index, which names a local network interface")
    _refuse_odd_ipv4(parsed.raw_host)
    return parsed


def _refuse_odd_ipv4(host: str) -> None:
    # Decimal, octal, hex and short forms (2130706433, 0177.0.0.1, 0x7f.1, 127.1) mean different
    # things to different parsers; only the dotted quad is unambiguous.
    if ":" in host or not _IPV4_NUMBER.fullmatch(host.removesuffix(".").rpartition(".")[2]):
        return
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise UrlForbidden(f"host {host!r} is an unusual IPv4 spelling; write the address as a dotted quad") from None


async def _resolve(host: str, port: int | None, timeout: float) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise FetchFailed(f"resolving {host} took longer than {timeout}s", code="fetch_timeout") from None
    except (socket.gaierror, UnicodeError) as exc:
        raise HostUnresolvable(f"host {host} does not resolve: {exc}") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be connected to, or None when it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = _refusal(embedded)
        return reason and f"{address}, which embeds {reason}"
    for label, matches in _REFUSED:
        if matches(address):
            return f"{address} ({label})"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    # These IPv6 forms reach the IPv4 address they carry, so that address decides; NAT64 also
    # carries every IPv4-only host on a DNS64 network, which must stay reachable.
    if address.version == 4:
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour


def _allowed(host: str, address: IPAddress, allow_hosts: tuple[str, ...]) -> bool:
    return any(
        address in ipaddress.ip_network(entry, strict=False) if "/" in entry else entry.lower() == host
        for entry in allow_hosts
    )


class _PinnedResolver(AbstractResolver):
    """Answers every lookup with the address the guard checked, so DNS is never asked again."""

    def __init__(self, address: IPAddress) -> None:
        self._address = address
        self._family = socket.AF_INET if address.version == 4 else socket.AF_INET6

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=str(self._address),
                port=port,
                family=self._family,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        pass


def _pinned_session(target: Target, settings: Settings) -> aiohttp.ClientSession:
    """A session whose connections all go to ``target.address``; TLS SNI and Host still use the name."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=_PinnedResolver(target.address), use_dns_cache=False),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.fetch_connect_timeout),
        # An environment proxy would make the connection to an address the guard never saw.
        trust_env=False,
    )


async def fetch(url: str, settings: Settings) -> Fetched:
    """GET ``url`` through the guard.

    Raises ``UrlForbidden`` when any hop is refused, ``HostUnresolvable`` when a hop's host does not resolve,
    and ``FetchFailed`` with the code of what happened (schemas.errors.FetchFailed).
    """
    try:
        # One deadline for the whole redirect chain, so hops cannot stretch it.
        async with asyncio.timeout(settings.fetch_total_timeout):
            return await _follow(url, settings)
    except TimeoutError:
        raise FetchFailed(
            f"fetching {url} took longer than {settings.fetch_total_timeout}s", code="fetch_timeout"
        ) from None


async def _follow(url: str, settings: Settings) -> Fetched:
    for _ in range(settings.fetch_max_redirects + 1):
        outcome = await _get(await check_url(url, settings), settings)
        if isinstance(outcome, Fetched):
            return outcome
        url = outcome
    raise FetchFailed(f"too many redirects: more than {settings.fetch_max_redirects}")


async def _get(target: Target, settings: Settings) -> Fetched | str:
    """One hop: what was fetched, or the absolute URL a redirect points to."""
    with _connection_errors(target, settings):
        async with (
            _pinned_session(target, settings) as session,
            session.get(target.url, allow_redirects=False) as response,
        ):
            location = response.headers.get(hdrs.LOCATION)
            if response.status in _REDIRECTS and location:
                return urljoin(str(response.url), location)
            if not 200 <= response.status < 300:
                raise FetchFailed(f"{target.url} answered HTTP {response.status} {response.reason or ''}".rstrip(),
                                  code="fetch_http_error")  # fmt: skip
            return Fetched(
                body=await _read_capped(response, settings.fetch_max_bytes),
                url=str(response.url),
                content_type=response.content_type,
                filename=_filename(response),
            )


async def post(url: str, body: bytes, headers: Mapping[str, str], settings: Settings) -> int:
    """POST ``body`` to ``url`` through the guard; the HTTP status of the answer.

    A redirect is not followed, only answered with its status: the checked address is the only one
    reached. Raises ``UrlForbidden`` when the URL is refused, ``HostUnresolvable`` when its host does not
    resolve, and ``FetchFailed`` with the code of what happened (``fetch_timeout``: no answer within
    ``webhook_timeout``).
    """
    try:
        async with asyncio.timeout(settings.webhook_timeout):
            target = await check_url(url, settings)
            with _connection_errors(target, settings):
                async with (
                    _pinned_session(target, settings) as session,
                    session.post(target.url, data=body, headers=headers, allow_redirects=False) as response,
                ):
                    return response.status
    except TimeoutError:
        raise FetchFailed(f"POST to {url} took longer than {settings.webhook_timeout}s", code="fetch_timeout") from None


@contextlib.contextmanager
def _connection_errors(target: Target, settings: Settings):
    """aiohttp's connection errors as ``FetchFailed`` naming the URL, each cause with its code."""
    try:
        yield
    except aiohttp.ServerTimeoutError:
        raise FetchFailed(
            f"connecting to {target.url} took longer than {settings.fetch_connect_timeout}s", code="fetch_timeout"
        ) from None
    except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
        raise FetchFailed(f"the TLS handshake with {target.url} failed: {exc}", code="fetch_tls_failed") from exc
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            message = f"{target.url.host}:{target.url.port} ({target.address}) refused the connection"
            raise FetchFailed(message, code="fetch_refused") from exc
        raise FetchFailed(f"connecting to {target.url} failed: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise FetchFailed(f"fetching {target.url} failed: {exc}") from exc


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    # Content-Length only lets a large body fail early; the cap is enforced on the bytes read
    # (after decompression), since a server may omit or lie about it.
    if response.content_length is not None and response.content_length > limit:
        raise _too_large(response.url, limit)
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise _too_large(response.url, limit)
    return bytes(body)


def _too_large(url: URL, limit: int) -> FetchFailed:
    return FetchFailed(f"{url} is larger than the {limit}-byte limit", code="fetch_too_large")


def _filename(response: aiohttp.ClientResponse) -> str:
    disposition = response.content_disposition
    return safe_name((disposition and disposition.filename) or response.url.name, fallback=_FALLBACK_FILENAME)
