"""``/healthz``: the process answers. ``/readyz``: the broker and the object store answer too."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ingest import auth, keys


@auth.public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"success": True, "status": "alive"})


@auth.public
async def readyz(request: web.Request) -> web.Response:
    checks = {"broker": request.app[keys.PUBLISHER].ping(), "object_store": asyncio.to_thread(request.app[keys.STORE].ping)}
    results = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, timeout=5)
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
            results[name] = f"unreachable: {type(exc).__name__}"
    ready = all(value == "ok" for value in results.values())
    body = {"success": ready, "checks": results}
    if not ready:
        body.update(error="not ready: " + ", ".join(k for k, v in results.items() if v != "ok"), code="not_ready")
    return web.json_response(body, status=200 if ready else 503)
