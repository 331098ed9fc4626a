"""The ``medialane`` command as a person meets it, without the session's stack: found on the PATH, help in plain
text, clear refusals instead of tracebacks, and 429/503 answers waited out (against a local fake of the API).

The command runs as the installed console script in a subprocess, from an empty directory, with no
``MEDIALANE_*`` setting but the ones a test gives: as it runs outside a checkout.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[1]
MEDIALANE = Path(sys.executable).parent / "medialane"
SAMPLE = ROOT.parent / "shared" / "samples" / "exif-samples" / "jpg" / "Canon_40D.jpg"


def clean_env(**settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDIALANE_")}
    return env | settings


async def medialane(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        MEDIALANE, *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


def test_setup_puts_medialane_on_the_path(tmp_path):
    bin_dir, elsewhere = tmp_path / "bin", tmp_path / "elsewhere"
    bin_dir.mkdir(), elsewhere.mkdir()
    # -o: the venv counts as installed, so this runs only the link step of `make setup`.
    done = subprocess.run(["make", "-s", "-C", ROOT, "-o", ".venv/.installed", "setup", f"LINK_DIR={bin_dir}"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"medialane is on the PATH: {bin_dir}/medialane" in done.stdout
    env = clean_env(PATH=f"{bin_dir}:/usr/bin:/bin")
    found = subprocess.run(["medialane", "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert "submit" in found.stdout and "MEDIALANE_KEY" in found.stdout


async def test_help_is_plain_text_and_names_every_command(tmp_path):
    code, out, err = await medialane("--help", cwd=tmp_path, env=clean_env(TERM="xterm-256color"))
    assert code == 0, err
    assert "\x1b" not in out
    for command in ("up", "keys", "submit", "jobs", "job", "similar", "uniquify"):
        assert f"\n    {command} " in out, command
    code, out, err = await medialane("submit", "--help", cwd=tmp_path, env=clean_env())
    assert code == 0 and "\x1b" not in out and "--concurrency N" in out and "MEDIALANE_URL" in out


async def test_keys_without_credentials_say_so_and_leave_nothing(tmp_path):
    code, out, err = await medialane("keys", "list", cwd=tmp_path, env=clean_env())
    assert code == 1
    assert "Traceback" not in err
    assert f"{tmp_path}/.medialane/credentials.json does not exist" in err and "MEDIALANE_DATA_DIR" in err
    assert list(tmp_path.iterdir()) == []


async def test_keys_with_an_object_store_that_does_not_answer(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "credentials.json").write_text(json.dumps({"access_key": "a", "secret_key": "b", "link_secret": "c"}))
    env = clean_env(MEDIALANE_DATA_DIR=str(data), MEDIALANE_S3_ENDPOINT="127.0.0.1:1")
    code, out, err = await medialane("keys", "create", "x", cwd=tmp_path, env=env)
    assert code == 1 and "Traceback" not in err
    assert f"data directory {data}" in err and "did not answer" in err


async def test_client_commands_refuse_a_missing_key_or_an_unreachable_server(tmp_path):
    code, _, err = await medialane("jobs", cwd=tmp_path, env=clean_env())
    assert code == 2 and "MEDIALANE_KEY" in err and "Traceback" not in err
    env = clean_env(MEDIALANE_KEY="ml_x", MEDIALANE_URL="http://127.0.0.1:1")
    code, _, err = await medialane("jobs", cwd=tmp_path, env=env)
    assert code == 1 and "cannot reach http://127.0.0.1:1" in err and "Traceback" not in err
    code, _, err = await medialane("submit", "no-such-file.jpg", cwd=tmp_path, env=env)
    assert code == 2 and "no-such-file.jpg: no such file or folder" in err
    code, _, err = await medialane("jobs", cwd=tmp_path, env=env | {"MEDIALANE_KEY": "ml_x\nX-Other: 1"})
    assert code == 2 and "control characters" in err and "Traceback" not in err


async def test_submit_waits_out_429_and_503_after_their_retry_after(tmp_path):
    """A fake of our API (docs/api.md) that answers each route's first request with 429 or 503 and
    ``Retry-After: 1``: the file still completes, and nothing is counted as failed."""
    job_id, seen = str(uuid.uuid4()), []

    def busy(status: int, code: str) -> web.Response:
        body = {"success": False, "error": "busy", "code": code}
        return web.json_response(body, status=status, headers={"Retry-After": "1"})

    async def list_jobs(request: web.Request) -> web.Response:
        seen.append(("list", time.monotonic()))
        return busy(503, "workers_unavailable") if len(seen) == 1 else web.json_response(
            {"success": True, "jobs": [], "next_cursor": None})  # fmt: skip

    async def create_job(request: web.Request) -> web.Response:
        assert request.headers["X-API-Key"] == "ml_fake"
        form = await request.post()
        assert form["ops"] == "metadata" and form["file"].file.read() == SAMPLE.read_bytes()
        seen.append(("post", time.monotonic()))
        if sum(kind == "post" for kind, _ in seen) == 1:
            return busy(429, "rate_limited")
        return web.json_response({"success": True, "job_id": job_id, "status": "queued"}, status=202)

    async def get_job(request: web.Request) -> web.Response:
        seen.append(("get", time.monotonic()))
        if sum(kind == "get" for kind, _ in seen) == 1:
            return busy(503, "workers_unavailable")
        return web.json_response({"success": True, "job_id": job_id, "status": "completed", "ops": ["metadata"],
                                  "result": {"metadata": {"file": {"name": "Canon_40D.jpg"}}}, "error": None})  # fmt: skip

    app = web.Application()
    app.router.add_get("/v1/jobs", list_jobs)
    app.router.add_post("/v1/jobs", create_job)
    app.router.add_get("/v1/jobs/{job_id}", get_job)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        env = clean_env(MEDIALANE_KEY="ml_fake", MEDIALANE_URL=str(server.make_url("")))
        code, out, err = await medialane("submit", str(SAMPLE), "--out", "out", cwd=tmp_path, env=env)
    finally:
        await server.close()
    assert code == 0, out + err
    [line] = map(json.loads, (tmp_path / "out" / "summary.jsonl").read_text().splitlines())
    assert line["status"] == "completed" and line["job_id"] == job_id and line["error"] is None
    assert json.loads((tmp_path / "out" / "Canon_40D.jpg.metadata.json").read_text()) == {"file": {"name": "Canon_40D.jpg"}}
    kinds = [kind for kind, _ in seen]
    assert kinds == ["list", "list", "post", "post", "get", "get"]
    # Each retry came no sooner than its Retry-After said.
    for first, second in zip(seen[::2], seen[1::2]):
        assert second[1] - first[1] >= 0.95
