"""What the sink's tests share: a worker app whose agents run in Faust's ``agent.test_context()``, its sends
captured by topic, and ``put`` that returns once an agent has handled what it was given."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from unittest.mock import patch

import pytest
from faust.sensors import Sensor

from compose.worker import create_worker
from schemas import topics
from schemas.messages import Message


class Finished(Sensor):
    """Counts the events agents are done with. A test context's ``put`` returns once the agent has taken the
    value, not once it has handled it: a stream lets an event go only when its agent asks for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.changed = asyncio.Condition()

    def on_stream_event_out(self, tp, offset, stream, event, state=None) -> None:
        self.count += 1
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(30), self.changed:
            await self.changed.wait_for(lambda: self.count >= count)


@pytest.fixture(scope="module")
async def app(settings, stack, tmp_path_factory):
    # Tables of its own on disk: one process opens a RocksDB store once, and each module that uses this makes an app.
    worker = create_worker(settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("sink-worker")}))
    worker.finished = Finished()
    worker.sensors.add(worker.finished)
    worker.finalize()
    worker.flow_control.resume()
    return worker


class Sent:
    """What the stages sent, by topic: each contract topic's ``send`` patched to record instead."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes, int | None]] = []

    def capture(self, name: str):
        async def send(*, key: bytes, value: bytes, partition: int | None = None, **_) -> None:
            self.records.append((name, key, value, partition))

        return send

    def of(self, topic: topics.Topic) -> list[Message]:
        return [topic.message.model_validate_json(value) for name, _, value, _ in self.records if name == topic.name]

    def clear(self) -> None:
        self.records.clear()


@pytest.fixture
def sent(app):
    recorder = Sent()
    with ExitStack() as patches:
        for topic in topics.TOPICS:
            patches.enter_context(patch.object(app.topic_of(topic), "send", recorder.capture(topic.name)))
        yield recorder


async def put(app, agent_name: str, job_id: str, *values: Message | bytes, partition: int = 0) -> None:
    """Each value to the agent, keyed by the job, and back once the agent has handled them all."""
    async with app.agents[agent_name].test_context() as agent:
        target = app.finished.count + len(values)
        for value in values:
            raw = value if isinstance(value, bytes) else value.model_dump_json().encode()
            await agent.put(raw, key=job_id.encode(), partition=partition)
        await app.finished.reach(target)
