"""The ops a job may ask for, one module each, found here by themselves.

An op module declares ``OP`` (its schemas.messages.Op) and ``async def run(app, media, data)``: ``data`` is
the job's original, and the message it returns is published to ``schemas.topics.RESULTS[OP]``. Adding an op
is its contract in schemas/ and its module here; no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable

from adapters.worker_app import WorkerApp
from adapters.worker_metrics import timed_op
from schemas.messages import MediaReady, Message, Op
from schemas.topics import RESULTS

Run = Callable[[WorkerApp, MediaReady, bytes], Awaitable[Message]]


def registry() -> dict[Op, Run]:
    """Each op module's ``run`` by its ``OP``. An op without a result topic, or with two modules, stops the
    worker from starting rather than failing its jobs."""
    found: dict[Op, Run] = {}
    for module_info in pkgutil.iter_modules(__path__, f"{__name__}."):
        module = importlib.import_module(module_info.name)
        if module.OP not in RESULTS:
            raise LookupError(f"{module.__name__}: {module.OP} has no result topic in schemas.topics.RESULTS")
        if module.OP in found:
            raise LookupError(f"{module.__name__}: {module.OP} is already run by another module")
        # Timed and logged here (adapters/worker_metrics.py), so no op module does it.
        found[module.OP] = timed_op(module.OP, module.run)
    return found
