"""``/healthz``: the process answers. ``/readyz``: the broker and the object store answer, and the workers
between them take new jobs on every partition and answer lookups of jobs on every partition."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from ingest import auth, keys
from schemas.topics import JOBS, STATUS


@auth.public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"success": True, "status": "alive"})


async def workers_serving(request: web.Request) -> None:
    """Raises, saying what is still recovering, unless the ready workers between them serve every partition
    of the jobs topic (new jobs are taken) and of the status table (lookups succeed)."""
    settings, session = request.app[keys.SETTINGS], request.app[keys.WORKERS].session
    served: dict[str, set[int]] = {JOBS.name: set(), STATUS.name: set()}
    waiting = []
    for url in settings.worker_urls:
        try:
            async with session.get(f"{url}/ready", timeout=aiohttp.ClientTimeout(total=2)) as response:
                body = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            waiting.append(f"{url} unreachable ({type(exc).__name__})")
            continue
        if response.status != 200:
            waiting.append(f"{url} {body.get('code', response.status)}")
            continue
        for topic, partitions in body.get("partitions", {}).items():
            served.setdefault(topic, set()).update(partitions)
    every = set(range(settings.topic_partitions))
    missing = {topic: sorted(every - partitions) for topic, partitions in served.items() if every - partitions}
    if missing:
        unserved = "; ".join(f"{topic} partitions {parts}" for topic, parts in missing.items())
        raise LookupError(f"not served: {unserved}" + (f" (workers: {', '.join(waiting)})" if waiting else ""))


# Each check answers within this, so /readyz answers within it too (the checks run at once), even with a part hung.
CHECK_TIMEOUT = 3.0


async def check(probe) -> str:
    try:
        await asyncio.wait_for(probe, timeout=CHECK_TIMEOUT)
        return "ok"
    except LookupError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
        return f"unreachable: {type(exc).__name__}"


@auth.public
async def readyz(request: web.Request) -> web.Response:
    probes = {"broker": request.app[keys.PUBLISHER].ping(), "object_store": asyncio.to_thread(request.app[keys.STORE].ping),
              "workers": workers_serving(request)}  # fmt: skip
    results = dict(zip(probes, await asyncio.gather(*map(check, probes.values()))))
    down = [name for name, result in results.items() if result != "ok"]
    body = {"success": not down, "checks": results}
    if not down:
        return web.json_response(body)
    body.update(error="not ready: " + ", ".join(down), code="not_ready", down=down)
    return web.json_response(body, status=503, headers={"Retry-After": "5"})
