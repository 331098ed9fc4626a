"""Where the embedded stack of a test or benchmark run listens (tests/isolated_stack.py)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from compose.embedded import stack_ports
from isolated_stack import EPHEMERAL_PORTS_START, isolated_settings
from schemas.settings import Settings


def test_the_kernel_picks_outgoing_ports_above_every_isolated_stack() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert low >= EPHEMERAL_PORTS_START


def test_isolated_stacks_stay_below_the_outgoing_ports_and_off_the_configured_ones(tmp_path: Path) -> None:
    settings = Settings()
    configured = {*stack_ports(settings), settings.ingest_port, settings.worker_port}
    for _ in range(500):
        isolated = isolated_settings(settings, tmp_path, workers=2)
        ports = [*stack_ports(isolated), isolated.ingest_port, *(urlsplit(url).port for url in isolated.worker_urls)]
        assert max(ports) < EPHEMERAL_PORTS_START
        assert configured.isdisjoint(ports)


def test_the_embedded_servers_schedule_on_half_the_cores(stack) -> None:
    """SeaweedFS's Go runtime and Tansu's Tokio run on half the machine's cores (compose/embedded.py)."""
    half = str(max(1, (os.cpu_count() or 2) // 2))
    for child, variable in ((stack.object_store, "GOMAXPROCS"), (stack.broker, "TOKIO_WORKER_THREADS")):
        environ = Path(f"/proc/{child.process.pid}/environ").read_bytes().split(b"\0")
        assert f"{variable}={half}".encode() in environ, child.name
