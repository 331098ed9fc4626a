"""The one guard of API keys: who is calling, and whether they may call now.

A key is taken from, in this order, the ``X-API-Key`` header, ``Authorization: Bearer <key>``, a bare
``Authorization: <key>`` (imgfactory's form) or the ``key`` query parameter (exiftools.com's). Every
route needs one except handlers marked ``@public``; the middleware puts the caller's ``ApiKey`` at
``request[CALLER]``. A missing or wrong key raises ``Unauthorized``, which the error middleware
(outermost) renders in the route's dialect.

Limits are per ingest process (each process keeps its own counters; run N processes and a key gets up
to N times as much): a token bucket of ``rate_limit_per_second`` with ``rate_limit_burst`` requests,
and at most ``max_active_jobs`` jobs not yet completed or failed (a job counts from its admission; one refused
after it, its publish or its upload failed, stops counting as its request ends). A checked key is trusted for
``api_key_cache_seconds``, so a revoked key stops working within that many seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from schemas.errors import NotFound, RateLimited, Unauthorized
from schemas.views import JobView
from schemas.settings import Settings
from adapters.apikeys import ApiKey, KeyStore, digest, key_id_of

CALLER = web.RequestKey("caller", ApiKey)
# The job a request was admitted for (``Guard.admit_job``) until it is published: a request that ends with it
# still here was refused after admission (the broker or the store down), and the job stops counting.
ADMITTED = web.RequestKey("admitted_job", str)
# The query parameter a key may come in: on every route, so parsers of a route's own parameters skip it.
KEY_PARAM = "key"
BEARER = "bearer "
CACHE_LIMIT = 10_000
ACTIVE_RETRY_AFTER = 5

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def public(handler: Handler) -> Handler:
    """Marks a handler that answers without an API key."""
    handler.__medialane_public__ = True  # type: ignore[attr-defined]
    return handler


def is_public(handler: object) -> bool:
    return getattr(handler, "__medialane_public__", False)


def presented_key(request: web.Request) -> str | None:
    """The key the request carries, in any of the four accepted places; None when it carries none."""
    if value := request.headers.get("X-API-Key", "").strip():
        return value
    if value := request.headers.get("Authorization", "").strip():
        return value[len(BEARER):].strip() if value.lower().startswith(BEARER) else value
    return request.query.get(KEY_PARAM, "").strip() or None


@dataclass
class Bucket:
    tokens: float
    at: float


def take(bucket: Bucket, now: float, rate: float, burst: int) -> float:
    """Takes one token; 0 when there was one, else the seconds until there is one (and nothing is taken)."""
    bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
    bucket.at = now
    if bucket.tokens >= 1:
        bucket.tokens -= 1
        return 0.0
    return (1 - bucket.tokens) / rate


class Lookup(Protocol):
    async def lookup(self, job_id: str, owner: str, documents: bool = True) -> JobView: ...


class Guard:
    def __init__(self, settings: Settings, keys: KeyStore) -> None:
        self.settings = settings
        self.keys = keys
        self.checked: dict[str, tuple[float, ApiKey | None]] = {}
        self.buckets: dict[str, Bucket] = {}
        self.active: dict[str, set[str]] = {}

    async def authenticate(self, raw: str | None) -> ApiKey:
        if raw is None:
            raise Unauthorized("missing API key: send it as X-API-Key, Authorization: Bearer, or ?key=",
                               code="missing_api_key")  # fmt: skip
        key = await self.verify(raw) if key_id_of(raw) else None
        if key is None:
            raise Unauthorized("invalid API key")
        return key

    async def verify(self, raw: str) -> ApiKey | None:
        now, cache_key = time.monotonic(), digest(raw)
        cached = self.checked.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await asyncio.to_thread(self.keys.verify, raw)
        if len(self.checked) >= CACHE_LIMIT:
            self.checked.clear()
        self.checked[cache_key] = (now + self.settings.api_key_cache_seconds, key)
        return key

    async def admit(self, request: web.Request) -> ApiKey:
        """The request's caller, authenticated and throttled, also set at ``request[CALLER]``."""
        key = await self.authenticate(presented_key(request))
        self.throttle(key)
        request[CALLER] = key
        return key

    def throttle(self, key: ApiKey) -> None:
        now = time.monotonic()
        bucket = self.buckets.setdefault(key.key_id, Bucket(self.settings.rate_limit_burst, now))
        wait = take(bucket, now, self.settings.rate_limit_per_second, self.settings.rate_limit_burst)
        if wait:
            limit = f"{self.settings.rate_limit_per_second:g} requests per second (burst {self.settings.rate_limit_burst})"
            raise RateLimited(f"more than {limit} with this key", retry_after=math.ceil(wait))

    async def admit_job(self, key: ApiKey, job_id: str, jobs: Lookup) -> None:
        """Counts ``job_id`` against the key's active jobs, or raises RateLimited when they are at the cap."""
        active = self.active.setdefault(key.key_id, set())
        cap = self.settings.max_active_jobs
        if len(active) >= cap:
            # Ended jobs are forgotten as the status topic says so (``job_ended``); one whose end this process
            # missed (it started after) is found by looking the counted jobs up, at the cap only.
            await self.active_jobs(key.key_id, jobs)
        if len(active) >= cap:
            raise RateLimited(f"this key already has {cap} jobs queued or processing; wait for one to finish",
                              retry_after=ACTIVE_RETRY_AFTER, code="too_many_active_jobs")  # fmt: skip
        active.add(job_id)

    async def active_jobs(self, key_id: str, jobs: Lookup) -> set[str]:
        """The key's counted jobs that have not ended, once those that have are forgotten."""
        active = self.active.setdefault(key_id, set())
        known = list(active)
        views = await asyncio.gather(*(jobs.lookup(job, key_id, documents=False) for job in known),
                                     return_exceptions=True)  # fmt: skip
        for job, view in zip(known, views):
            if isinstance(view, NotFound) or isinstance(view, JobView) and view.status.terminal:
                active.discard(job)
        return set(active)

    def job_ended(self, job_id: str) -> None:
        for active in self.active.values():
            active.discard(job_id)

    def release_job(self, key_id: str, job_id: str) -> None:
        """``job_id`` was admitted but never published: it does not count."""
        self.active.get(key_id, set()).discard(job_id)


def middleware(guard: Guard):
    """Authenticates and throttles every request to a route not marked ``@public``."""

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        match = request.match_info
        if match.http_exception is None and not is_public(match.handler):
            await guard.admit(request)
        try:
            return await handler(request)
        finally:
            if (job_id := request.get(ADMITTED)) is not None:
                guard.release_job(request[CALLER].key_id, job_id)

    return auth_middleware
