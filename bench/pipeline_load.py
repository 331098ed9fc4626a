"""The end-to-end benchmark's load: ~200 KB camera JPEGs, a closed loop, an open loop and a user-like history.

Every job goes through the API as a client sends it (multipart upload, ``?wait``). A job's time is taken
twice: by the client's clock (from the moment it was due to the answer, so an open loop that falls behind
counts its queueing) and by the server's own (the job's ``created_at``, stamped at accept, to its
``updated_at``, stamped by the worker's terminal event).
"""

from __future__ import annotations

import asyncio
import io
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif-samples" / "jpg"
TARGET_BYTES = 200 * 1024
WAIT = "60"


def _encode(im: Image.Image, exif: bytes, scale: float) -> bytes:
    out = io.BytesIO()
    im.resize((max(8, int(im.width * scale)), max(8, int(im.height * scale)))).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def camera_jpegs() -> list[bytes]:
    """Each camera sample (jpg/ and jpg/gps/; none weighs 200 KB) rescaled to 200 KB ± 3%, its EXIF kept."""
    sources = sorted(p for p in [*SAMPLES.glob("*.jpg"), *SAMPLES.glob("gps/*.jpg")] if p.name != "corrupted.jpg")
    images = []
    for path in sources:
        with Image.open(path) as original:
            exif, im = original.info.get("exif", b""), original.convert("RGB")
        low, high = 0.1, 40.0
        for _ in range(30):
            scale = (low * high) ** 0.5
            data = _encode(im, exif, scale)
            if abs(len(data) - TARGET_BYTES) <= 0.03 * TARGET_BYTES:
                break
            low, high = (scale, high) if len(data) < TARGET_BYTES else (low, scale)
        images.append(data)
    return images


def make_jpegs(count: int) -> list[bytes]:
    """``count`` jobs' files, going round the camera JPEGs."""
    images = camera_jpegs()
    return [images[i % len(images)] for i in range(count)]


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Outcome:
    """What a batch of jobs came to: client and server latencies (s), answers that were not a finished job."""

    elapsed: float = 0.0
    client: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return len(self.client)

    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def summary(self, which: str = "server") -> str:
        values = getattr(self, which)
        return f"p50 {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms"


def _server_seconds(body: dict) -> float:
    created, updated = (datetime.fromisoformat(body[k].replace("Z", "+00:00")) for k in ("created_at", "updated_at"))
    return (updated - created).total_seconds()


def job_form(data: bytes, index: int, ops: str | None = None, webhook: str | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=f"bench-{index}.jpg", content_type="image/jpeg")
    if ops:
        form.add_field("ops", ops)
    if webhook:
        form.add_field("webhook_url", webhook)
    return form


async def post(session: aiohttp.ClientSession, outcome: Outcome, path: str, form: aiohttp.FormData, due: float,
               params: dict | None = None) -> None:  # fmt: skip
    """One job, answered with ``?wait``; its times go to ``outcome``, or why it did not finish."""
    try:
        async with session.post(path, data=form, params={"wait": WAIT, **(params or {})}) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        outcome.failures.append(f"{type(exc).__name__}: {exc}")
        return
    if response.status != 200 or body.get("status") not in ("completed", "partial"):
        outcome.failures.append(f"{response.status} {body.get('status') or body.get('code')} {body.get('job_id', '')}")
        return
    outcome.client.append(time.perf_counter() - due)
    outcome.server.append(_server_seconds(body))
    outcome.ids.append(body["job_id"])


def session_for(url: str, key: str) -> aiohttp.ClientSession:
    # No pool limit: an open loop must not queue its requests in the client.
    return aiohttp.ClientSession(base_url=url, headers={"X-API-Key": key}, connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=120))  # fmt: skip


async def closed_loop(session: aiohttp.ClientSession, files: list[bytes], concurrency: int) -> Outcome:
    """Every file a metadata job, ``concurrency`` in flight: each client sends its next job when one ends."""
    outcome, queue = Outcome(), list(enumerate(files))[::-1]

    async def client() -> None:
        while queue:
            index, data = queue.pop()
            await post(session, outcome, "/v1/jobs", job_form(data, index), time.perf_counter())

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    outcome.elapsed = time.perf_counter() - started
    return outcome


async def open_loop(session: aiohttp.ClientSession, files: list[bytes], rate: float, seconds: float) -> Outcome:
    """Metadata jobs sent at ``rate`` a second for ``seconds``, whether or not earlier ones have finished."""
    outcome, tasks = Outcome(), []
    started = time.perf_counter()
    for index in range(int(rate * seconds)):
        due = started + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        form = job_form(files[index % len(files)], index)
        tasks.append(asyncio.create_task(post(session, outcome, "/v1/jobs", form, due)))
    offered = time.perf_counter() - started
    await asyncio.gather(*tasks)
    outcome.elapsed = offered
    return outcome


async def warm_up(session: aiohttp.ClientSession, files: list[bytes], jobs: int = 8) -> Outcome:
    """A few jobs first, so each worker's exiftool and decoders have started."""
    return await closed_loop(session, files[:jobs], jobs)


# A user's history, every 20 jobs: 11 metadata, 3 phash, 2 strip, 3 metadata with a webhook, 1 uniquify of one
# image into 2 copies (so its fan-out across the workers, fan-in and zip are in the history too).
MIX = ("metadata",) * 11 + ("phash",) * 3 + ("strip",) * 2 + ("webhook",) * 3 + ("uniquify",)


class Receiver:
    """A webhook receiver in the benchmark's process, answering 200 to every delivery and counting them."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        await request.read()
        self.deliveries += 1
        return web.json_response({"ok": True})

    async def __aenter__(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def history(session: aiohttp.ClientSession, files: list[bytes], start: int, count: int, concurrency: int,
                  receiver: Receiver) -> Outcome:  # fmt: skip
    """``count`` jobs of the user mix (MIX), jobs ``start``… of the history, ``concurrency`` at a time."""
    outcome, queue = Outcome(), list(range(start, start + count))[::-1]

    async def one(index: int) -> None:
        kind, data = MIX[index % len(MIX)], files[index % len(files)]
        due = time.perf_counter()
        if kind == "uniquify":
            form = aiohttp.FormData()
            form.add_field("images", data, filename=f"bench-{index}.jpg", content_type="image/jpeg")
            await post(session, outcome, "/v1/uniquify", form, due, {"copies": "2"})
        elif kind == "webhook":
            await post(session, outcome, "/v1/jobs", job_form(data, index, webhook=receiver.url), due)
        else:
            await post(session, outcome, "/v1/jobs", job_form(data, index, ops=kind), due)

    async def client() -> None:
        while queue:
            await one(queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    outcome.elapsed = time.perf_counter() - started
    return outcome


async def run_jobs(url: str, key: str, jobs: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    """The earlier benchmarks' call (bench/broker_idle.py): a warm-up job, then every job, closed loop."""
    async with session_for(url, key) as session:
        await warm_up(session, jobs, 1)
        outcome = await closed_loop(session, jobs, concurrency)
    if outcome.failures:
        raise RuntimeError(f"{len(outcome.failures)} jobs did not complete: {outcome.failures[:3]}")
    return outcome.elapsed, outcome.client
