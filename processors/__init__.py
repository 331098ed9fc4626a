"""The processors: each job in one hop (fetch: its original, then every op of ops/ through ops_stage), and
uniquify's fan-out (uniquify) into copies (copies)."""

from __future__ import annotations

from adapters.worker_app import WorkerApp
from processors import copies, fetch, uniquify


def register(app: WorkerApp) -> None:
    for stage in (fetch, uniquify, copies):
        stage.register(app)
