"""The processors: jobs -> media (fetch) -> one result per op (ops_stage, the ops in ops/), and uniquify's
fan-out (uniquify) into copies (copies)."""

from __future__ import annotations

from adapters.worker_app import WorkerApp
from processors import copies, fetch, ops_stage, uniquify


def register(app: WorkerApp) -> None:
    for stage in (fetch, ops_stage, uniquify, copies):
        stage.register(app)
