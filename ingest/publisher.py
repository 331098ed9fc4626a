"""The ingest side of Kafka: the producer that publishes job requests."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from adapters.kafka import compression_type
from schemas.errors import Unavailable
from schemas.messages import JobRecord, Message
from schemas.settings import Settings

# A submission the broker has not taken within this answers 503 instead of holding the client. Tansu under
# load takes well under a second.
PUBLISH_TIMEOUT = 2.0
# aiokafka gives up a batch it could not deliver within this and drops it, so a submission answered 503 is
# not published later, when the broker is back (it would otherwise retry the batch until then).
DELIVERY_TIMEOUT_MS = 1500
# The supervisor restarts a broker within seconds (compose/supervisor.py).
BROKER_RETRY_AFTER = 5


class Publisher:
    def __init__(self, settings: Settings) -> None:
        # Linger lets the records of requests arriving together share one produce request (the embedded
        # broker writes an object per produce request and partition).
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                         linger_ms=settings.kafka_linger_ms,
                                         compression_type=compression_type(settings),
                                         request_timeout_ms=DELIVERY_TIMEOUT_MS)  # fmt: skip

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, job_id: str, message: Message) -> asyncio.Future:
        """Queues the record; the future is done once the broker has it."""
        return await self.producer.send(topic, message.model_dump_json().encode(), key=job_id.encode())

    async def submit(self, record: JobRecord, topic: str, job: Message) -> None:
        """The job, once the broker has it. Its queued status event is published by the stage that takes it
        (adapters/courier.py, ``report_taken``): one process produces a job's status partition."""
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                sent = await self.send(topic, record.job_id, job)
                # wait() leaves the record's future alone when it times out, so aiokafka's sender never
                # meets a cancelled one.
                await asyncio.wait([sent])
            sent.result()
        except (KafkaError, TimeoutError) as exc:
            raise Unavailable(f"the broker did not take the job within {PUBLISH_TIMEOUT:g} s ({type(exc).__name__})",
                              code="broker_unavailable", retry_after=BROKER_RETRY_AFTER) from exc  # fmt: skip

    async def ping(self) -> None:
        await self.producer.client.fetch_all_metadata()
