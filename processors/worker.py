"""``medialane worker``: one Faust worker process running every processor and sink agent."""

from __future__ import annotations

import sys
from pathlib import Path


def run(loglevel: str = "info") -> None:
    from processors.app import app
    import processors.agents  # noqa: F401 - importing registers the agents
    import sink.agents  # noqa: F401

    Path(app.conf.datadir).mkdir(parents=True, exist_ok=True)
    sys.argv = [sys.argv[0], "worker", "--loglevel", loglevel]
    app.main()
