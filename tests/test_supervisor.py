"""The supervisor of `medialane up` (compose/supervisor.py), on real child processes: one that crashes, one
that is SIGKILLed, one that keeps serving. The whole pipeline under it is tests/test_chaos.py."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import yaml

from compose.embedded import Child
from compose.supervisor import CRASH_LOOP, Supervisor


def python_child(tmp_path: Path, name: str, code: str, env: dict[str, str] | None = None) -> Child:
    return Child(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", env or {})


def supervise(children, tmp_path: Path, until, timeout: float = 30) -> tuple[Supervisor, list[str]]:
    """Runs a supervisor with short backoffs over ``children`` until ``until(lines)`` holds; its lines."""
    lines: list[str] = []
    supervisor = Supervisor(children, tmp_path / "supervisor.prom", lines.append, first_backoff=0.1, max_backoff=0.4)
    stopping = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stopping, 0.05))
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not until(lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
    finally:
        stopping.set()
        thread.join()
    return supervisor, lines


def counted(path: Path, metric: str, kind: str) -> float:
    found = re.search(rf'^{metric}\{{kind="{kind}"\}} (\S+)$', path.read_text(), re.MULTILINE)
    assert found, path.read_text()
    return float(found[1])


def test_a_crashing_child_is_restarted_with_backoff_and_reported_while_the_others_keep_running(tmp_path):
    crashing = python_child(tmp_path, "ingest", "import sys; print('cannot bind 127.0.0.1:8080', flush=True); sys.exit(3)")
    steady = python_child(tmp_path, "worker-0", "import time; time.sleep(120)")
    crashing.start(), steady.start()
    steady_pid = steady.process.pid
    try:
        supervisor, lines = supervise([("ingest", crashing), ("worker", steady)], tmp_path,
                                      lambda lines: sum("ingest restarted" in line for line in lines) > CRASH_LOOP)  # fmt: skip
        assert steady.alive() and steady.process.pid == steady_pid
    finally:
        crashing.stop(), steady.stop()

    exits = [line for line in lines if line.startswith("ingest exited")]
    assert all("(exit status 3)" in line for line in exits)
    delays = [float(re.search(r"restarting in (\S+) s", line)[1]) for line in exits]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.4]
    report = [line for line in lines if "keeps crashing" in line]
    assert len(report) == 1 and "cannot bind 127.0.0.1:8080" in report[0]
    metrics = tmp_path / "supervisor.prom"
    assert counted(metrics, "medialane_supervisor_restarts_total", "ingest") >= CRASH_LOOP
    assert counted(metrics, "medialane_supervisor_restarts_total", "worker") == 0
    assert 'medialane_supervisor_crash_looping{child="ingest"} 1.0' in metrics.read_text()


def test_a_killed_worker_comes_back_with_its_identity(tmp_path):
    code = "import os, time; print('worker id', os.environ['MEDIALANE_WORKER_ID'], flush=True); time.sleep(120)"
    worker = python_child(tmp_path, "worker-1", code, {"MEDIALANE_WORKER_ID": "1"})
    worker.start()
    first_pid = worker.process.pid
    try:
        # The first round sees it running; then it dies as an OOM kill would take it.
        threading.Timer(0.3, os.kill, (first_pid, signal.SIGKILL)).start()
        _, lines = supervise([("worker", worker)], tmp_path, lambda lines: any("restarted" in line for line in lines))
        assert "worker-1 exited (killed by SIGKILL)" in lines[0]
        deadline = time.monotonic() + 10
        while worker.log_path.read_text().count("worker id 1") < 2:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.05)
        assert worker.alive() and worker.process.pid != first_pid
    finally:
        worker.stop()
    assert counted(tmp_path / "supervisor.prom", "medialane_supervisor_exits_total", "worker") == 1


def test_the_compose_stack_restarts_and_checks_every_long_running_service():
    stack = yaml.safe_load((Path(__file__).resolve().parents[1] / "compose" / "docker-compose.yml").read_text())
    for name, service in stack["services"].items():
        if service.get("command") == ["init"]:
            # One-shot: done once it succeeds, tried again until it does.
            assert service["restart"] == "on-failure"
            continue
        assert service["restart"] in ("unless-stopped", "always"), name
        assert service["healthcheck"]["test"], name
