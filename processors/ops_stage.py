"""A job's ops on its original, in the stage that took the job (processors/fetch.py): each op's result
document to the object store, its result message to its op's topic (schemas.topics.RESULTS), and its
outcome returned for the job's one terminal status event.

The ops are processors/ops/. Each ends on its own: one that fails leaves the others' results standing. The
work runs in threads, so the event loop keeps heartbeating while exiftool or a decoder is busy.
"""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.courier import error_info
from adapters.objects import result_key
from adapters.worker_app import WorkerApp
from processors.ops import registry
from schemas.messages import MediaReady, Op, Status
from schemas.status_events import OpOutcome
from schemas.topics import RESULTS


class OpsStage:
    """Runs a job's ops for one app."""

    def __init__(self, app: WorkerApp) -> None:
        self.app = app
        self.ops = registry()

    async def apply(self, media: MediaReady, data: bytes) -> tuple[dict[Op, OpOutcome], dict[Op, Any]]:
        """Every op of the job on ``data``, the original's bytes; each op's outcome, and the completed ops'
        documents."""
        outcomes, documents = {}, {}
        for op in media.ops:
            outcomes[op], document = await self.run_op(op, media, data)
            if document is not None:
                documents[op] = document
        return outcomes, documents

    async def run_op(self, op: Op, media: MediaReady, data: bytes) -> tuple[OpOutcome, Any]:
        try:
            result = await self.ops[op](self.app, media, data)
            key, document = result_key(media.job_id, op), result.document()
            # Stored before it is announced: whoever hears of the result finds its document. Overwriting
            # makes a redelivery harmless.
            size = await asyncio.to_thread(self.app.store.put_json, key, document)
        except Exception as exc:  # noqa: BLE001 - the op fails with its reason; the job's other ops go on
            return OpOutcome(status=Status.FAILED, error=error_info(exc)), None
        await self.app.courier.publish(RESULTS[op], media.job_id, result)
        return OpOutcome(status=Status.COMPLETED, object_key=key, size=size), document
