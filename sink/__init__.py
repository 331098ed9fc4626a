"""The sink: where every stage's output lands. Results in the object store, status events in the status table,
webhooks delivered, uniquification copies gathered into their zip, the pHash index replicated, and the
worker's web pages that read them.
"""

from __future__ import annotations

from adapters.worker_app import WorkerApp
from sink import fanin, results, similar, status, views, webhook_stage


def register(app: WorkerApp) -> None:
    """Every sink stage's agents, timers, task and pages, on ``app``."""
    results.register(app)
    fanin.register(app)
    status.register(app)
    webhook_stage.register(app)
    views.register(app, similar.register(app))
