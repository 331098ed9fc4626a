"""Where the embedded stack of a test or benchmark run listens: a free block of ports of its own.

Shared by tests/conftest.py and the benchmarks (``from tests.isolated_stack import isolated_settings``,
run from the repository root), not by ``medialane up``, which listens where the settings say.
"""

from __future__ import annotations

import random
from pathlib import Path

from compose.embedded import StackError, port_open, stack_ports
from schemas.settings import Settings

# The kernel picks the local ports of outgoing connections from 32768 up (ip_local_port_range): a stack's
# ports, gRPC twins included, stay below it, or a connection of the moment can hold one as SeaweedFS binds.
EPHEMERAL_PORTS_START = 32768


def isolated_settings(settings: Settings, data_dir: Path, workers: int) -> Settings:
    """``settings`` moved to a free block of ports, so a test or benchmark stack never meets a running one
    (nor the ports ``settings`` name, which a stack started later would take)."""
    taken = {*stack_ports(settings), settings.ingest_port, settings.worker_port}
    for _ in range(200):
        s3 = random.randrange(10000, EPHEMERAL_PORTS_START - 10000 - 20, 20)
        candidate = settings.model_copy(
            update={
                "data_dir": data_dir, "workers": workers, "s3_endpoint": f"127.0.0.1:{s3}",
                "kafka_bootstrap": f"127.0.0.1:{s3 + 5}", "worker_port": s3 + 6, "ingest_port": s3 + 6 + workers,
                "worker_urls": tuple(f"http://127.0.0.1:{s3 + 6 + i}" for i in range(workers)),
            }
        )  # fmt: skip
        ports = [*stack_ports(candidate), *range(s3 + 6, s3 + 8 + workers)]
        if taken.isdisjoint(ports) and not any(port_open("127.0.0.1", port) for port in ports):
            return candidate
    raise StackError("no free block of ports found")
