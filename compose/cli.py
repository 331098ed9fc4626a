"""The ``medialane`` command.

``up`` starts the embedded stack (object store, broker), creates the topics, then the workers and the
ingest service as child processes, and stops them all in reverse order on Ctrl-C or SIGTERM.
``init``, ``worker`` and ``ingest`` are what a production deployment runs (see compose/).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading

from schemas.settings import Settings, get_settings


def up(settings: Settings) -> int:
    from compose.embedded import EmbeddedPipeline

    pipeline = EmbeddedPipeline(settings)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        print(f"starting: object store {settings.s3_endpoint}, broker {settings.kafka_bootstrap}, "
              f"{settings.workers} worker(s), ingest", flush=True)  # fmt: skip
        pipeline.start()
        print(f"medialane is up at {pipeline.url}  (logs in {pipeline.logs}; Ctrl-C stops)", flush=True)
        while not stopping.wait(1.0):
            if dead := pipeline.dead_children():
                print(f"{', '.join(dead)} exited; see {pipeline.logs}", file=sys.stderr)
                return 1
        return 0
    finally:
        print("stopping", flush=True)
        pipeline.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medialane", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the whole pipeline on the embedded broker and object store")
    commands.add_parser("worker", help="run one worker (processors and sink)")
    commands.add_parser("ingest", help="run the ingest HTTP service")
    commands.add_parser("init", help="create the topics, the bucket and its lifecycle rule (idempotent)")
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
    elif args.command == "init":
        from ingest.publisher import create_topics
        from sink.objects import ObjectStore

        asyncio.run(create_topics(settings))
        ObjectStore(settings).ensure_bucket()
    elif args.command == "schemas":
        from schemas.export import write_schemas

        for path in write_schemas():
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
