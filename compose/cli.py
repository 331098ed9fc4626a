"""The ``medialane`` command.

``up`` starts the embedded stack (object store, broker), creates the topics, then the workers and the
ingest service as child processes, and stops them all in reverse order on Ctrl-C or SIGTERM.
``worker``, ``ingest`` and ``topics`` are what a production deployment runs (see compose/).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading

from schemas.settings import Settings, get_settings


def worker_settings(settings: Settings, index: int) -> Settings:
    return settings.model_copy(update={"worker_port": settings.worker_port + index})


def up(settings: Settings) -> int:
    from compose.embedded import Child, EmbeddedStack, wait_for, port_open
    from ingest.publisher import create_topics

    stack = EmbeddedStack(settings)
    settings = stack.settings
    workers = [worker_settings(settings, i) for i in range(settings.workers)]
    settings = settings.model_copy(
        update={"worker_urls": tuple(f"http://{w.worker_host}:{w.worker_port}" for w in workers)}
    )
    logs = settings.data_dir / "logs"
    children = [
        Child(f"worker-{i}", [sys.executable, "-m", "compose.cli", "worker"], logs / f"worker-{i}.log",
              worker_settings(settings, i).env())
        for i in range(len(workers))
    ] + [Child("ingest", [sys.executable, "-m", "compose.cli", "ingest"], logs / "ingest.log", settings.env())]  # fmt: skip
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        print(f"starting the object store on {settings.s3_endpoint} and the broker on {settings.kafka_bootstrap}")
        stack.start()
        asyncio.run(create_topics(settings))
        for child in children:
            child.start()
        wait_for(lambda: port_open(settings.ingest_host, settings.ingest_port), 60, "the ingest service", children[-1])
        print(f"medialane is up: http://{settings.ingest_host}:{settings.ingest_port}  (logs in {logs}; Ctrl-C stops)")
        while not stopping.wait(1.0):
            dead = [c.name for c in children if not c.alive()]
            if dead:
                print(f"{', '.join(dead)} exited; see {logs}", file=sys.stderr)
                return 1
        return 0
    finally:
        print("stopping")
        for child in reversed(children):
            child.stop()
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medialane", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the whole pipeline on the embedded broker and object store")
    commands.add_parser("worker", help="run one worker (processors and sink)")
    commands.add_parser("ingest", help="run the ingest HTTP service")
    commands.add_parser("topics", help="create the medialane topics on the configured broker")
    commands.add_parser("schemas", help="write the JSON Schemas of every message to schemas/")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "up":
        return up(settings)
    if args.command == "worker":
        from processors.worker import run

        run()
    elif args.command == "ingest":
        from ingest.app import run

        run(settings)
    elif args.command == "topics":
        from ingest.publisher import create_topics

        asyncio.run(create_topics(settings))
    elif args.command == "schemas":
        from schemas.export import write_schemas

        for path in write_schemas():
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
