"""The workers' web servers as the ingest service sees them: any one answers, the next is tried when one
is down or still loading, and a worker's JSON error body is passed on as the same typed error."""

from __future__ import annotations

import asyncio

import aiohttp

from schemas.errors import MedialaneError, Unavailable
from schemas.settings import Settings

RETRY_ON_STATUS = frozenset({502, 503, 504})


class WorkerError(MedialaneError):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(str(body.get("error", "worker error")), code=str(body.get("code", "worker_error")))
        self.status = status


class Workers:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.urls = settings.worker_urls
        self.timeout = aiohttp.ClientTimeout(total=settings.worker_lookup_timeout)
        self.session = session

    async def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, dict]:
        failures = []
        for url in self.urls:
            try:
                async with self.session.get(f"{url}{path}", params=params, timeout=self.timeout) as response:
                    if response.status not in RETRY_ON_STATUS:
                        return response.status, await response.json()
                    failures.append(f"{url}: HTTP {response.status}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failures.append(f"{url}: {type(exc).__name__}")
        raise Unavailable(f"no worker answered ({'; '.join(failures)})", code="workers_unavailable")

    async def get_ok(self, path: str, params: dict[str, str] | None = None) -> dict:
        status, body = await self.get(path, params)
        if status != 200:
            raise WorkerError(status, body)
        return body
