"""A small client of medialane's HTTP API (docs/api.md), used by the people's commands (compose/client_cli.py).

It needs only a base URL and a key, never the checkout or the data directory. ``429`` and ``503`` answers
are retried after their ``Retry-After`` for up to ``retry_seconds``: the API sends them for rate limits, for
too many active jobs and while workers restart, all of which pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

RETRYABLE = (429, 503)
# The default MEDIALANE_MAX_WAIT_SECONDS is 60: half of it keeps a request well inside any proxy's timeout.
SUBMIT_WAIT_SECONDS = 30
UNFINISHED = ("queued", "processing")
DOWNLOAD_CHUNK = 256 * 1024


class ApiError(Exception):
    """An answer that is not a success, or no answer at all; ``code`` is the API's error code."""

    def __init__(self, message: str, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status

    @property
    def refused_key(self) -> bool:
        return self.status == 401

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


def retry_after(response: aiohttp.ClientResponse) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        # An HTTP-date, which this API never sends: a second is as good a guess as any.
        return 1.0


class ApiClient:
    def __init__(self, url: str, key: str, retry_seconds: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"X-API-Key": key}
        self.retry_seconds = retry_seconds
        self.wait = SUBMIT_WAIT_SECONDS
        self.retries = 0
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        # No total timeout: a ?wait= request or a large download legitimately takes long.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=SUBMIT_WAIT_SECONDS + 60)
        self.session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self.session is not None
        await self.session.close()

    async def request(self, method: str, path: str, *, params: dict | None = None,
                      form: Callable[[], aiohttp.FormData] | None = None) -> tuple[int, Any]:  # fmt: skip
        """``(status, JSON body)`` of a 2xx answer; anything else raises ApiError. ``form`` builds the body
        anew for each attempt, since a sent FormData cannot be sent again."""
        assert self.session is not None
        deadline = time.monotonic() + self.retry_seconds
        while True:
            try:
                async with self.session.request(method, f"{self.url}{path}", params=params, headers=self.headers,
                                                data=form() if form else None) as response:  # fmt: skip
                    if response.status in RETRYABLE and time.monotonic() + retry_after(response) < deadline:
                        pause = retry_after(response)
                    else:
                        return response.status, await self.body(response)
            except aiohttp.ClientError as exc:
                raise ApiError(f"cannot reach {self.url}: {exc or type(exc).__name__}", "unreachable") from exc
            self.retries += 1
            await asyncio.sleep(pause)

    @staticmethod
    async def body(response: aiohttp.ClientResponse) -> Any:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        if response.ok and body is not None:
            return body
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            raise ApiError(body["error"], str(body.get("code", "http_error")), response.status)
        raise ApiError(f"HTTP {response.status} {response.reason} from {response.url}", "http_error", response.status)

    async def check(self) -> None:
        """Fails early, with the reason, when the URL or the key is wrong: before any upload."""
        await self.request("GET", "/v1/jobs", params={"limit": "1"})

    async def submit(self, path: Path, ops: Sequence[str], keep: Sequence[str] | None = None) -> dict:
        """The finished job document of one uploaded file."""
        data = await asyncio.to_thread(path.read_bytes)

        def form() -> aiohttp.FormData:
            body = aiohttp.FormData()
            body.add_field("file", data, filename=path.name, content_type="application/octet-stream")
            body.add_field("ops", ",".join(ops))
            if keep is not None:
                body.add_field("keep", ",".join(keep))
            return body

        try:
            status, answer = await self.request("POST", "/v1/jobs", params={"wait": str(self.wait)}, form=form)
        except ApiError as exc:
            if exc.code != "invalid_wait" or not self.wait:
                raise
            # The server allows shorter waits than this client asks (MEDIALANE_MAX_WAIT_SECONDS): poll instead.
            self.wait = 0
            status, answer = await self.request("POST", "/v1/jobs", params={"wait": "0"}, form=form)
        if answer["status"] in UNFINISHED:
            return await self.wait_for(answer["job_id"])
        return answer

    async def wait_for(self, job_id: str, progress: Callable[[dict], None] | None = None) -> dict:
        """Polls the job until it is no longer queued or processing (a status added later counts as ended)."""
        pause = 0.25
        while True:
            _, job = await self.request("GET", f"/v1/jobs/{job_id}")
            if progress:
                progress(job)
            if job["status"] not in UNFINISHED:
                return job
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)

    async def job(self, job_id: str) -> dict:
        return (await self.request("GET", f"/v1/jobs/{job_id}"))[1]

    async def jobs(self, limit: int, cursor: str | None = None) -> dict:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        return (await self.request("GET", "/v1/jobs", params=params))[1]

    async def similar(self, *, phash: str | None = None, image: Path | None = None, **params: str) -> dict:
        if image is None:
            return (await self.request("GET", "/v1/similar", params={"phash": phash, **params}))[1]
        data = await asyncio.to_thread(image.read_bytes)

        def form() -> aiohttp.FormData:
            body = aiohttp.FormData()
            body.add_field("file", data, filename=image.name, content_type="application/octet-stream")
            return body

        return (await self.request("POST", "/v1/similar", params=params, form=form))[1]

    async def uniquify(self, images: Sequence[Path], params: dict[str, str]) -> dict:
        """The accepted job (``job_id``); follow it with ``wait_for``."""
        contents = [(path.name, await asyncio.to_thread(path.read_bytes)) for path in images]

        def form() -> aiohttp.FormData:
            body = aiohttp.FormData()
            for name, data in contents:
                body.add_field("images", data, filename=name, content_type="application/octet-stream")
            return body

        return (await self.request("POST", "/v1/uniquify", params=params, form=form))[1]

    async def download(self, link: str, dest: Path) -> None:
        """A signed result link, saved to ``dest``. The link is its own credential: the key is not sent, so
        a link on another host never sees it."""
        assert self.session is not None
        try:
            async with self.session.get(link) as response:
                if not response.ok:
                    await self.body(response)
                part = dest.with_name(dest.name + ".part")
                with part.open("wb") as out:
                    async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                        out.write(chunk)
                part.replace(dest)
        except aiohttp.ClientError as exc:
            raise ApiError(f"cannot download {dest.name}: {exc or type(exc).__name__}", "unreachable") from exc
