"""Uniquify's result, from its topic to the object store and the job's outcome.

Every other op's result is stored and reported by the stage that runs the job (processors/fetch.py) in the
same hop; uniquify's is made by the fan-in (sink/fanin.py) once its copies across the workers are zipped,
so it is kept here. The other result topics are for subscribers alone.
"""

from __future__ import annotations

import asyncio

from adapters.courier import error_info
from adapters.objects import result_key
from adapters.worker_app import WorkerApp
from schemas.job_state import ended
from schemas.messages import Op, Status
from schemas.status_events import OpOutcome
from schemas.topics import RESULTS, STATUS


def register(app: WorkerApp) -> None:
    courier = app.courier
    op = Op.UNIQUIFY
    topic = RESULTS[op]

    @app.agent(app.topic_of(topic), name=f"{__name__}.store_{op.value}")
    async def store(stream):
        async for _, result in courier.messages(stream, topic.message):
            try:
                key = result_key(result.job_id, op)
                # Overwriting: a redelivery is harmless.
                size = await asyncio.to_thread(app.store.put_json, key, result.document())
                outcome = OpOutcome(status=Status.COMPLETED, object_key=key, size=size)
            except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
                outcome = OpOutcome(status=Status.FAILED, error=error_info(exc))
            # ``op`` names the op this event ends, as it did before per-op outcomes: subscribers wait on it.
            event = ended(result.job_id, {op: outcome}).model_copy(update={"op": op})
            await courier.publish(STATUS, result.job_id, event)
