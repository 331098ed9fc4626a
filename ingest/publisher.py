"""The ingest side of Kafka: the producer that publishes job requests."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from schemas.messages import JobRecord, Message, Status, StatusEvent
from schemas.settings import Settings


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, job_id: str, message: Message) -> None:
        await self.producer.send_and_wait(topic, message.model_dump_json().encode(), key=job_id.encode())

    async def submit(self, record: JobRecord, topic: str, job: Message) -> None:
        """The job's queued status first, then the job: its first status event precedes any stage's."""
        queued = StatusEvent(job_id=record.job_id, status=Status.QUEUED, at=record.created_at, ops=record.ops,
                             owner=record.owner, client_id=record.client_id, webhook_url=record.webhook_url)  # fmt: skip
        await self.send("medialane.status", record.job_id, queued)
        await self.send(topic, record.job_id, job)

    async def ping(self) -> None:
        await self.producer.client.fetch_all_metadata()
