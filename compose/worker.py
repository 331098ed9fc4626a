"""``medialane worker``: one Faust worker process running every stage of processors/ and sink/."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import processors
import sink
from adapters.kafka import create_topics
from adapters.logs import logging_config
from adapters.worker_app import WorkerApp, create_app
from adapters.worker_metrics import observe
from schemas.settings import Settings


def create_worker(settings: Settings) -> WorkerApp:
    app = create_app(settings)
    processors.register(app)
    sink.register(app)
    observe(app)
    return app


def run(settings: Settings, loglevel: str = "info") -> None:
    # Partitioned as the topics are, whatever the setting says now (adapters/kafka.py).
    settings = asyncio.run(create_topics(settings))
    app = create_worker(settings)
    # Faust sets up the process's logging as its worker starts: with this configuration, not its own.
    app.conf.logging_config = logging_config(settings.log_format)
    Path(app.conf.datadir).mkdir(parents=True, exist_ok=True)
    sys.argv = [sys.argv[0], "worker", "--loglevel", loglevel]
    app.main()
