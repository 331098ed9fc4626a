"""Logs: one JSON line a request in ingest and a line a job and op in the workers, found by the job's id; and no
key, ``?key=`` value or download link's signature in any log line (adapters/logs.py redacts every line)."""

from __future__ import annotations

import io
import json
import logging
import sys
from contextlib import contextmanager

import aiohttp
import pytest

from adapters.logs import JsonFormatter, TextFormatter, formatter
from conftest import SAMPLES, poll_job

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
KEY = "ml_0123456789ab_" + "s" * 43
SIGNED = "http://127.0.0.1:8080/v1/downloads/eyJrIjoidG1wL3gifQ.c2lnbmF0dXJlc2lnbmF0dXJl"


def record(message: str, *args, **extra) -> logging.LogRecord:
    made = logging.LogRecord("test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_every_line_is_redacted_whatever_logged_it(log_format):
    line = formatter(log_format).format(record(
        "GET /v1/jobs?limit=1&key=%s Authorization: Bearer %s %s webhook whsec_abcdefghijkl url=%s",
        KEY, "opaque-token", SIGNED, "https://x.test/a?X-Amz-Signature=deadbeef&sig=cafe",
        job_id="j-1", key_id="0123456789ab",
    ))  # fmt: skip
    for secret in (KEY, "opaque-token", "c2lnbmF0dXJlc2lnbmF0dXJl", "whsec_abcdefghijkl", "deadbeef", "cafe"):
        assert secret not in line
    assert "limit=1&key=REDACTED" in line and "/v1/downloads/REDACTED" in line and "Bearer REDACTED" in line
    assert "j-1" in line and "0123456789ab" in line


def test_a_json_line_holds_the_message_and_the_fields():
    line = json.loads(JsonFormatter().format(record("op %s done", "metadata", job_id="j-2", duration=0.25)))
    assert line["message"] == "op metadata done" and line["job_id"] == "j-2" and line["duration"] == 0.25
    assert line["level"] == "info" and line["logger"] == "test" and line["time"].endswith("Z")


def test_a_text_line_puts_the_fields_after_the_message_and_redacts_tracebacks():
    try:
        raise ValueError(f"refused {KEY}")
    except ValueError:
        failed = record("failed", job_id="j-3")
        failed.exc_info = sys.exc_info()
    text = TextFormatter().format(failed)
    assert text.splitlines()[0].endswith("failed job_id=j-3")
    assert "ValueError: refused REDACTED" in text and KEY not in text


@contextmanager
def captured_access_log():
    """The in-process ingest's access log, as ``medialane ingest`` writes it in JSON."""
    out, handler, logger = io.StringIO(), logging.StreamHandler(), logging.getLogger("aiohttp.access")
    handler.stream = out
    handler.setFormatter(JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def lines_of(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


async def test_a_job_is_followed_by_its_id_and_no_key_reaches_a_log(api, ingest, api_key, settings):
    base = str(ingest.make_url("")).rstrip("/")
    with captured_access_log() as access:
        form = aiohttp.FormData()
        form.add_field("file", CANON.read_bytes(), filename=CANON.name, content_type="application/octet-stream")
        form.add_field("ops", "metadata,strip")
        async with api.post("/v1/jobs", data=form) as response:
            assert response.status == 202
            job_id = (await response.json())["job_id"]
        job = await poll_job(api, job_id)
        assert job["status"] == "completed", job
        link = job["result"]["strip"]["downloadUrl"]
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{base}/v1/jobs/{job_id}", params={"key": api_key}) as response:
                assert response.status == 200
            async with anonymous.get(f"{base}/v1/jobs", headers={"Authorization": f"Bearer {api_key}"}) as response:
                assert response.status == 200
            async with anonymous.get(link) as response:
                assert response.status == 200
    ingest_lines = lines_of(access.getvalue())

    posted = [line for line in ingest_lines if line.get("job_id") == job_id and line["method"] == "POST"]
    assert len(posted) == 1
    assert posted[0]["route"] == "/v1/jobs" and posted[0]["status"] == 202 and posted[0]["key_id"] == api_key[3:15]
    assert posted[0]["duration"] > 0
    assert any(line.get("job_id") == job_id and "key=REDACTED" in line["message"] for line in ingest_lines)

    worker_lines = [line for path in sorted((settings.data_dir / "logs").glob("worker-*.log"))
                    for line in lines_of(path.read_text(errors="replace")) if line.get("job_id") == job_id]  # fmt: skip
    ops = {line["op"]: line for line in worker_lines if "op" in line}
    assert set(ops) == {"metadata", "strip"}
    assert all(line["outcome"] == "completed" and line["duration"] > 0 for line in ops.values())
    [ended] = [line for line in worker_lines if "ops" in line]
    assert ended["outcome"] == "completed" and ended["ops"] == "metadata,strip"

    signature = link.rpartition(".")[2]
    logs = [access.getvalue(), *(p.read_text(errors="replace") for p in (settings.data_dir / "logs").glob("*.log"))]
    for text in logs:
        assert api_key not in text and signature not in text
