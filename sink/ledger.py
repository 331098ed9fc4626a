"""The fan-in of a uniquification job: which copies are made, which failed, when the job is complete.

Pure: ``record`` takes the job's ledger (a JSON-able dict, kept in the Faust table ``uniquify``) and
one event, and says what to do. Redelivered events change nothing; a copy whose md5 another copy or a
source already has is sent back to be made again (``CopyTask.retry`` gives new bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.uniquify import CopyTask, UniquifyParams, plan_copies
from schemas.messages import CopyMade, CopyPlanned, UniquifyJob

EMPTY: dict[str, Any] = {"job": None, "expected": None, "made": {}, "failed": {}, "md5s": {}, "zipped": False}


@dataclass(frozen=True)
class Outcome:
    ledger: dict[str, Any]
    retry: dict[str, Any] | None = None
    progressed: bool = False

    @property
    def complete(self) -> bool:
        ledger = self.ledger
        return (
            ledger["expected"] is not None
            and not ledger["zipped"]
            and len(ledger["made"]) + len(ledger["failed"]) == ledger["expected"]
        )


def task_key(task: dict[str, Any]) -> str:
    return f"{task['source_index']}-{task['copy_index']}"


def percent(ledger: dict[str, Any]) -> int:
    if not ledger["expected"]:
        return 0
    return 100 * (len(ledger["made"]) + len(ledger["failed"])) // ledger["expected"]


def record(ledger: dict[str, Any] | None, event: CopyPlanned | CopyMade) -> Outcome:
    ledger = {**EMPTY, **(ledger or {})}
    if isinstance(event, CopyPlanned):
        if ledger["job"] is None:
            ledger = {**ledger, "job": event.job.model_dump(mode="json"), "expected": event.expected}
            ledger["md5s"] = {**ledger["md5s"], **{s.md5: "source" for s in event.job.sources}}
        return Outcome(ledger, progressed=True)
    key = task_key(event.task)
    if key in ledger["made"] or key in ledger["failed"]:
        return Outcome(ledger)
    if event.error is not None:
        failed = {**ledger["failed"], key: {"source": event.task["source_index"], **event.error.model_dump()}}
        return Outcome({**ledger, "failed": failed}, progressed=True)
    md5 = event.entry["md5"]
    if ledger["md5s"].get(md5, key) != key:
        return Outcome(ledger, retry=CopyTask.model_validate(event.task).retry().model_dump())
    made = {**ledger["made"], key: {"entry": event.entry, "object_key": event.object_key}}
    return Outcome({**ledger, "made": made, "md5s": {**ledger["md5s"], md5: key}}, progressed=True)


def stalled_tasks(ledger: dict[str, Any], now: float, since: float, after: float) -> list[dict[str, Any]]:
    """The copies a job still waits for, once it has made no progress for ``after`` seconds (``since``: its
    last progress or re-order); none for a job not planned yet or already zipped.

    At-least-once delivery means an order or its result can come late, but a worker crash at the wrong
    moment has been seen to leave a job waiting on copies nobody is making.
    """
    if ledger["job"] is None or ledger["zipped"] or now - since < after:
        return []
    job = UniquifyJob.model_validate(ledger["job"])
    done = ledger["made"].keys() | ledger["failed"].keys()
    tasks = (task.model_dump() for task in plan_copies(UniquifyParams.model_validate(job.params),
                                                      [source.name for source in job.sources], job.seed))
    return [task for task in tasks if task_key(task) not in done]
