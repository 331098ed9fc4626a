"""A worker's metrics and job log lines, taken where the work passes rather than in each stage.

- Each op's run (``timed_op``, wrapped around every op module's ``run`` by the op registry): its duration,
  and one log line with the job id, op, duration, outcome and error code.
- The status table (``JobSensor``, a Faust sensor): a job is counted, and logged, when its view there first
  turns terminal; only the worker that owns the job's partition writes it, and a replayed or redelivered
  status event finds the view terminal already, so every job is counted once.
- At each scrape (``WorkerCollector``): consumer lag per topic partition this worker owns, table sizes,
  exiftool restarts.

``observe(app)`` registers them and ``GET /metrics`` on the worker's web server; each worker process
serves its own registry.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from adapters.metrics import CONTENT_TYPE, DURATION_BUCKETS, exposition, instrument_store
from adapters.worker_app import WorkerApp
from schemas.errors import MedialaneError
from schemas.messages import Op, Status
from schemas.tables import STATUS, TABLES
from schemas.topics import TOPICS

log = logging.getLogger("medialane.jobs")
TERMINAL = frozenset(status.value for status in Status if status.terminal)
STREAM_TOPICS = frozenset(topic.name for topic in TOPICS)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.op_seconds = Histogram(
            "medialane_op_duration_seconds", "Each op's run on a job's original, by op and outcome.",
            ["op", "outcome"], registry=self.registry, buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.jobs_finished = Counter(
            "medialane_jobs_finished", "Finished jobs, once under each op they asked for, by that op's outcome and "
            "error code (empty when it completed).", ["op", "status", "code"], registry=self.registry,
        )  # fmt: skip
        self.job_seconds = Histogram(
            "medialane_job_duration_seconds", "From a job's acceptance by ingest to its end, by its ops and status.",
            ["ops", "status"], registry=self.registry, buckets=DURATION_BUCKETS,
        )  # fmt: skip


# The op wrapper is made once, at import, but runs for whichever app calls it: each app's metrics by app.
OBSERVED: weakref.WeakKeyDictionary[WorkerApp, WorkerMetrics] = weakref.WeakKeyDictionary()

Run = Callable[..., Awaitable]


def error_code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, MedialaneError) else "internal_error"


def timed_op(op: Op, run: Run) -> Run:
    """``run`` (an op module's ``run(app, media, data)``), timed and logged."""

    async def timed(app, media, data):
        start = time.perf_counter()
        outcome, code = Status.COMPLETED.value, None
        try:
            return await run(app, media, data)
        except BaseException as exc:
            outcome, code = Status.FAILED.value, error_code(exc)
            raise
        finally:
            seconds = time.perf_counter() - start
            if (metrics := OBSERVED.get(app)) is not None:
                metrics.op_seconds.labels(op.value, outcome).observe(seconds)
            log.info("op %s %s in %.3f s", op.value, outcome, seconds, extra={
                "job_id": media.job_id, "op": op.value, "duration": round(seconds, 6), "outcome": outcome,
                "error_code": code,
            })  # fmt: skip

    return timed


def seconds_between(start: str, end: str) -> float:
    return max((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 0.0)


class JobSensor(faust.Sensor):
    """Counts and logs each job once, when the status table first holds it ended."""

    def __init__(self, app: WorkerApp, metrics: WorkerMetrics) -> None:
        super().__init__()
        self.table = app.table_of(STATUS)
        self.metrics = metrics

    def on_table_set(self, table, key, value) -> None:
        if table is not self.table or value is None:
            return
        view = json.loads(value)
        if view.get("status") not in TERMINAL:
            return
        # Faust calls sensors before it stores the value: the table still holds the view before this event.
        before = table.data.get(key)
        if before is not None and json.loads(before).get("status") in TERMINAL:
            return
        self.finished(view)

    def finished(self, view: dict) -> None:
        status, ops = view["status"], view.get("ops") or []
        outcomes = view.get("outcomes") or {}
        job_error = (view.get("error") or {}).get("code")
        for op in ops:
            outcome = outcomes.get(op) or {}
            op_status = outcome.get("status") or status
            code = (outcome.get("error") or {}).get("code") or (job_error if op_status == Status.FAILED else None)
            self.metrics.jobs_finished.labels(op, op_status, code or "").inc()
        seconds = seconds_between(view["created_at"], view["updated_at"])
        self.metrics.job_seconds.labels(",".join(sorted(ops)), status).observe(seconds)
        log.info("job %s in %.3f s", status, seconds, extra={
            "job_id": view["job_id"], "ops": ",".join(ops), "duration": round(seconds, 6), "outcome": status,
            "error_code": job_error, "key_id": view.get("owner"),
        })  # fmt: skip


class WorkerCollector:
    """What a scrape reads as it stands: consumer lag, table sizes, exiftool restarts."""

    def __init__(self, app: WorkerApp) -> None:
        self.app = app

    def collect(self):
        yield self.consumer_lag()
        yield self.table_sizes()
        yield self.exiftool_restarts()

    def consumer_lag(self) -> GaugeMetricFamily:
        lag = GaugeMetricFamily("medialane_consumer_lag", "Records in a partition this worker owns that it has not "
                                "committed yet: its high watermark minus the committed offset.",
                                labels=["topic", "partition"])  # fmt: skip
        consumer = self.app.consumer
        for tp in sorted(self.app.assignor.assigned_actives()):
            # The high watermark of the partition's latest fetch response, empty ones included.
            end = consumer.highwater(tp) if tp.topic in STREAM_TOPICS else None
            if end is not None:
                # Faust keeps each owned partition's committed offset from its assignment on, and has no public
                # reader of it; None until the group ever committed there.
                committed = consumer._committed_offset.get(tp) or 0
                lag.add_metric([tp.topic, str(tp.partition)], max(end - committed, 0))
        return lag

    def table_sizes(self) -> GaugeMetricFamily:
        sizes = GaugeMetricFamily("medialane_table_entries", "Entries of each table in the partitions this "
                                  "worker owns.", labels=["table"])  # fmt: skip
        for table in TABLES:
            sizes.add_metric([table.name], len(self.app.table_of(table)))
        return sizes

    def exiftool_restarts(self) -> CounterMetricFamily:
        restarts = CounterMetricFamily("medialane_exiftool_restarts", "Kept-open exiftool processes started again "
                                       "after a crash or a timeout killed them.", labels=["process"])  # fmt: skip
        for process, count in self.app.exiftool.restarts.items():
            restarts.add_metric([process], count)
        return restarts


def observe(app: WorkerApp) -> WorkerMetrics:
    """The app's metrics: the sensor, the collector, the timed object store, and ``GET /metrics``."""
    metrics = OBSERVED[app] = WorkerMetrics()
    instrument_store(app.store, metrics.registry)
    metrics.registry.register(WorkerCollector(app))
    app.sensors.add(JobSensor(app, metrics))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # The content type has parameters (version, charset), which only a header may carry.
            return self.bytes(exposition(metrics.registry), headers={"Content-Type": CONTENT_TYPE})

    return metrics
