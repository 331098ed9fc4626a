"""``/metrics`` of ingest and of every worker, read with Prometheus' own parser after a known mix of jobs: the
counters moved by exactly that mix (the session's stack is shared, so each test compares before and after)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapters.exiftool import ExifTool
from adapters.worker_metrics import WorkerCollector
from conftest import SAMPLES, poll_job

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
COMPOSE = Path(__file__).resolve().parents[1] / "compose"
Samples = dict[tuple[str, frozenset], float]


def parsed(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


async def scrape(session: aiohttp.ClientSession, url: str) -> Samples:
    async with session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return parsed(await response.text())


async def workers_total(settings) -> Samples:
    """Every worker's samples, added up by name and labels (each worker counts what it did)."""
    total: Counter = Counter()
    async with aiohttp.ClientSession() as session:
        for url in settings.worker_urls:
            total.update(await scrape(session, url))
    return dict(total)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0) - before.get(key, 0)


async def upload(api, ops: str) -> str:
    form = aiohttp.FormData()
    form.add_field("file", CANON.read_bytes(), filename=CANON.name, content_type="application/octet-stream")
    form.add_field("ops", ops)
    async with api.post("/v1/jobs", data=form) as response:
        assert response.status == 202
        return (await response.json())["job_id"]


async def test_the_counters_match_a_known_mix_of_jobs(api, ingest, settings, file_server):
    base = str(ingest.make_url("")).rstrip("/")
    ingest_before, workers_before = await scrape(api, base), await workers_total(settings)

    done = await asyncio.gather(upload(api, "metadata,phash"), upload(api, "metadata,phash"))
    async with api.post("/v1/jobs", json={"url": f"{file_server}/redirect-private", "ops": ["metadata"]}) as response:
        assert response.status == 202
        failing = (await response.json())["job_id"]
    async with api.get(f"/v1/jobs/{uuid.uuid4()}") as response:
        assert response.status == 404
    jobs = [await poll_job(api, job_id) for job_id in (*done, failing)]
    assert [job["status"] for job in jobs] == ["completed", "completed", "failed"]
    assert jobs[2]["error"]["code"] == "url_forbidden"
    # The status table is written before a lookup can find a job ended, but a scrape may still come first.
    await asyncio.sleep(0.5)
    ingest_after, workers_after = await scrape(api, base), await workers_total(settings)

    assert delta(ingest_after, ingest_before, "medialane_jobs_accepted_total", op="metadata") == 3
    assert delta(ingest_after, ingest_before, "medialane_jobs_accepted_total", op="phash") == 2
    assert delta(ingest_after, ingest_before, "medialane_jobs_accepted_total", op="strip") == 0
    assert delta(ingest_after, ingest_before, "medialane_http_requests_total",
                 method="POST", route="/v1/jobs", status="202") == 3  # fmt: skip
    assert delta(ingest_after, ingest_before, "medialane_http_requests_total",
                 method="GET", route="/v1/jobs/{job_id}", status="404") == 1  # fmt: skip
    assert delta(ingest_after, ingest_before, "medialane_http_request_duration_seconds_count",
                 method="POST", route="/v1/jobs") == 3  # fmt: skip
    # The uploads and their owners' entries, at least, went to the object store from ingest.
    assert delta(ingest_after, ingest_before, "medialane_object_store_seconds_count", call="put_bytes", outcome="ok") >= 2

    finished = "medialane_jobs_finished_total"
    assert delta(workers_after, workers_before, finished, op="metadata", status="completed", code="") == 2
    assert delta(workers_after, workers_before, finished, op="phash", status="completed", code="") == 2
    assert delta(workers_after, workers_before, finished, op="metadata", status="failed", code="url_forbidden") == 1
    assert delta(workers_after, workers_before, finished, op="strip", status="completed", code="") == 0
    ops = "medialane_op_duration_seconds_count"
    assert delta(workers_after, workers_before, ops, op="metadata", outcome="completed") == 2
    assert delta(workers_after, workers_before, ops, op="phash", outcome="completed") == 2
    # The failing job's original never arrived: none of its ops ran.
    assert delta(workers_after, workers_before, ops, op="metadata", outcome="failed") == 0
    jobs_seconds = "medialane_job_duration_seconds_count"
    assert delta(workers_after, workers_before, jobs_seconds, ops="metadata,phash", status="completed") == 2
    assert delta(workers_after, workers_before, jobs_seconds, ops="metadata", status="failed") == 1
    assert delta(workers_after, workers_before, "medialane_object_store_seconds_count", call="get_bytes", outcome="ok") >= 2


async def test_each_worker_shows_lag_tables_and_exiftool(settings, workers):
    async with aiohttp.ClientSession() as session:
        scraped = [await scrape(session, url) for url in settings.worker_urls]
    lagging = set()
    for samples in scraped:
        names = {name for name, _ in samples}
        assert {"medialane_table_entries", "medialane_exiftool_restarts_total"} <= names
        assert {dict(labels)["table"] for name, labels in samples if name == "medialane_table_entries"} >= {"status"}
        lagging |= {(dict(labels)["topic"], dict(labels)["partition"]) for name, labels in samples
                    if name == "medialane_consumer_lag"}  # fmt: skip
    # Between them the workers own every partition of the jobs topic.
    assert {partition for topic, partition in lagging if topic == "medialane.jobs"} == {
        str(p) for p in range(settings.topic_partitions)
    }
    # Every job of the session got a status entry on the worker that owns its partition.
    entries = sum(s.get(("medialane_table_entries", frozenset({("table", "status")})), 0) for s in scraped)
    assert entries >= 1


def test_exiftool_restarts_are_counted_and_exposed(settings):
    """On an exiftool of the test's own: the workers' are killed by nothing a test can ask for by name."""
    app = type("App", (), {"exiftool": ExifTool(settings.exiftool_path, settings.exiftool_timeout)})
    collector = WorkerCollector(app)
    registry = CollectorRegistry()
    registry.register(type("Restarts", (), {"collect": lambda self: [collector.exiftool_restarts()]})())
    key = ("medialane_exiftool_restarts_total", frozenset({("process", "reader")}))
    try:
        assert parsed(generate_latest(registry).decode())[key] == 0
        # What a timeout does to a hung reader: the next call starts it again.
        app.exiftool._reader._kill()
        assert app.exiftool.extract(CANON.read_bytes(), "jpg")
        assert parsed(generate_latest(registry).decode())[key] == 1
    finally:
        app.exiftool.close()


async def test_the_dashboard_and_the_scrape_configuration_name_what_is_served(api, ingest, settings):
    served = {name for name, _ in await scrape(api, str(ingest.make_url("")).rstrip("/"))} | {
        name for name, _ in await workers_total(settings)}
    dashboard = json.loads((COMPOSE / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"medialane_\w+", target["expr"])}  # fmt: skip
    assert len(queried) >= 10 and queried <= served, queried - served
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"medialane-ingest", "medialane-worker"}
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())
    assert jobs["medialane-worker"]["dns_sd_configs"][0]["port"] == 6066
