"""What ``medialane up`` does while the stack runs: every process it started that exits is started again.

A child that exits is logged with its exit status and restarted after a backoff that doubles with each exit in
a row (1 s, 2 s, 4 s... at most ``MAX_BACKOFF``); one that then stays up ``STABLE_SECONDS`` starts again from
1 s. One that exits ``CRASH_LOOP`` times in a row is reported once with its last log lines, and is still
restarted every ``MAX_BACKOFF``: the part it needs (the object store, the broker) may come back. The others
keep running throughout. A child restarts as the same command and environment, so a worker keeps its
``MEDIALANE_WORKER_ID``, port and table directory, and replays only the tail of its changelogs.

Restarts and exits are counted by process kind in a Prometheus text file (``metrics_path``), the format
node_exporter's textfile collector reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile

from compose.embedded import Child

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 15.0
STABLE_SECONDS = 30.0
CRASH_LOOP = 5
TAIL_LINES = 20


def exit_status(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@dataclass
class Supervised:
    kind: str
    child: Child
    started_at: float
    in_a_row: int = 0
    restart_at: float | None = None
    reported: bool = False


class Supervisor:
    """Restarts the children that exit; ``check`` does one round, ``run`` rounds until told to stop."""

    def __init__(self, children: list[tuple[str, Child]], metrics_path: Path, say: Callable[[str], None],
                 first_backoff: float = FIRST_BACKOFF, max_backoff: float = MAX_BACKOFF) -> None:  # fmt: skip
        now = time.monotonic()
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.watched = [Supervised(kind, child, now) for kind, child in children]
        self.say = say
        self.metrics_path = metrics_path
        self.registry = CollectorRegistry()
        self.exits = Counter("medialane_supervisor_exits", "Children that exited unasked, by process kind.",
                             ["kind"], registry=self.registry)  # fmt: skip
        self.restarts = Counter("medialane_supervisor_restarts", "Children started again, by process kind.",
                                ["kind"], registry=self.registry)  # fmt: skip
        self.looping = Gauge("medialane_supervisor_crash_looping", f"1 while a child has exited {CRASH_LOOP} times in a row.",
                             ["child"], registry=self.registry)  # fmt: skip
        for item in self.watched:
            self.exits.labels(item.kind)
            self.restarts.labels(item.kind)
            self.looping.labels(item.child.name).set(0)
        self.write_metrics()

    def run(self, stopping: threading.Event, interval: float = 0.5) -> None:
        while not stopping.wait(interval):
            self.check()

    def check(self) -> None:
        now = time.monotonic()
        for item in self.watched:
            child = item.child
            if child.alive():
                if item.in_a_row and now - item.started_at > STABLE_SECONDS:
                    item.in_a_row, item.reported = 0, False
                    self.looping.labels(child.name).set(0)
                    self.write_metrics()
                continue
            if item.restart_at is None:
                self.exited(item, now)
            elif now >= item.restart_at:
                self.restart(item, now)

    def exited(self, item: Supervised, now: float) -> None:
        assert item.child.process is not None
        item.in_a_row += 1
        backoff = min(self.first_backoff * 2 ** (item.in_a_row - 1), self.max_backoff)
        item.restart_at = now + backoff
        ran = now - item.started_at
        self.exits.labels(item.kind).inc()
        self.say(f"{item.child.name} exited ({exit_status(item.child.process.returncode)}) after {ran:.1f} s; "
                 f"restarting in {backoff:g} s")  # fmt: skip
        if item.in_a_row >= CRASH_LOOP and not item.reported:
            item.reported = True
            self.looping.labels(item.child.name).set(1)
            self.say(f"{item.child.name} keeps crashing ({item.in_a_row} exits in a row; still restarted every "
                     f"{self.max_backoff:g} s, the rest keeps running). Last lines of {item.child.log_path}:\n"
                     f"{item.child.log_tail(TAIL_LINES)}")  # fmt: skip
        self.write_metrics()

    def restart(self, item: Supervised, now: float) -> None:
        child = item.child
        assert child.process is not None
        # What the dead process left in its group (exiftool, a gRPC helper) would hold its ports or locks.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.start()
        item.started_at, item.restart_at = now, None
        self.restarts.labels(item.kind).inc()
        self.say(f"{child.name} restarted (pid {child.process.pid})")
        self.write_metrics()

    def write_metrics(self) -> None:
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(self.metrics_path), self.registry)
