"""Each op's result, from the op's result topic (schemas/topics.py RESULTS) to the object store and the job.

One agent per op, all made alike from the topic's message and its ``document()``, so a new op needs no
change here.
"""

from __future__ import annotations

import asyncio

from adapters.objects import result_key
from adapters.worker_app import WorkerApp
from schemas.messages import Op, Status
from schemas.topics import RESULTS, Topic


def register(app: WorkerApp) -> None:
    for op, topic in RESULTS.items():
        store_results(app, op, topic)


def store_results(app: WorkerApp, op: Op, topic: Topic) -> None:
    courier = app.courier

    # Agents are named by their function, the same for every op here: the op makes each name unique.
    @app.agent(app.topic_of(topic), name=f"{__name__}.store_{op.value}")
    async def store(stream):
        async for _, result in courier.messages(stream, topic.message):
            try:
                document = result.document()
                # Overwriting: a redelivery is harmless.
                await asyncio.to_thread(app.store.put_json, result_key(result.job_id, op), document)
                await courier.report(result.job_id, Status.PROCESSING, op=op, result=document)
            except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
                await courier.report_failure(result.job_id, exc)
