"""The fan-in of a uniquification job: which copies are made, which failed, when the job is complete.

Pure: ``record`` takes the job's ledger (kept in the Faust table ``uniquify``) and one event, and says
what to do. Redelivered events change nothing; a copy whose md5 another copy or a source already has is
sent back to be made again (``CopyTask.retry`` gives new bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from media.uniquify import plan_copies
from schemas.messages import CopyMade, CopyPlanned
from schemas.tables import FailedCopy, Ledger, MadeCopy
from schemas.uniquify import CopyTask


@dataclass(frozen=True)
class Outcome:
    ledger: Ledger
    retry: CopyTask | None = None
    progressed: bool = False

    @property
    def complete(self) -> bool:
        ledger = self.ledger
        return ledger.expected is not None and not ledger.zipped and done(ledger) == ledger.expected


def task_key(task: CopyTask) -> str:
    return f"{task.source_index}-{task.copy_index}"


def done(ledger: Ledger) -> int:
    return len(ledger.made) + len(ledger.failed)


def percent(ledger: Ledger) -> int:
    if not ledger.expected:
        return 0
    return 100 * done(ledger) // ledger.expected


def record(ledger: Ledger | None, event: CopyPlanned | CopyMade) -> Outcome:
    ledger = ledger or Ledger()
    if isinstance(event, CopyPlanned):
        if ledger.job is None:
            md5s = {**ledger.md5s, **{source.md5: "source" for source in event.job.sources}}
            ledger = ledger.model_copy(update={"job": event.job, "expected": event.expected, "md5s": md5s})
        return Outcome(ledger, progressed=True)
    key = task_key(event.task)
    if key in ledger.made or key in ledger.failed:
        return Outcome(ledger)
    if event.error is not None:
        failure = FailedCopy(source=event.task.source_index, code=event.error.code, message=event.error.message)
        return Outcome(ledger.model_copy(update={"failed": {**ledger.failed, key: failure}}), progressed=True)
    assert event.entry is not None and event.object_key is not None
    md5 = event.entry["md5"]
    if ledger.md5s.get(md5, key) != key:
        return Outcome(ledger, retry=event.task.retry())
    made = {**ledger.made, key: MadeCopy(entry=event.entry, object_key=event.object_key)}
    return Outcome(ledger.model_copy(update={"made": made, "md5s": {**ledger.md5s, md5: key}}), progressed=True)


def stalled_tasks(ledger: Ledger, now: float, since: float, after: float) -> list[CopyTask]:
    """The copies a job still waits for, once it has made no progress for ``after`` seconds (``since``: its
    last progress or re-order); none for a job not planned yet or already zipped.

    At-least-once delivery means an order or its result can come late, but a worker crash at the wrong
    moment has been seen to leave a job waiting on copies nobody is making.
    """
    if ledger.job is None or ledger.zipped or now - since < after:
        return []
    job = ledger.job
    tasks = plan_copies(job.params, [source.name for source in job.sources], job.seed)
    return [task for task in tasks if task_key(task) not in ledger.made and task_key(task) not in ledger.failed]
