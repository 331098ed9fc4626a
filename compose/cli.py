"""The ``medialane`` command.

``up`` starts the embedded stack (object store, broker), creates the topics, then the workers and the
ingest service as child processes, and stops them all in reverse order on Ctrl-C or SIGTERM.
``init``, ``worker`` and ``ingest`` are what a production deployment runs (see compose/).
``keys create NAME | list | revoke KEY_ID`` manages the API keys (the raw key is shown only on create).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading

from schemas.settings import Settings, get_settings


def key_store(settings: Settings):
    from compose.embedded import ensure_credentials
    from adapters.apikeys import KeyStore
    from adapters.objects import ObjectStore

    if not settings.s3_access_key:
        # The embedded stack's object store: its generated credentials are in the data directory.
        settings = ensure_credentials(settings)
    return KeyStore(ObjectStore(settings))


def print_new_key(raw: str, key) -> None:
    print(f"key_id:         {key.key_id}\n"
          f"API key:        {raw}\n"
          f"webhook secret: {key.webhook_secret}\n"
          "The API key is shown only now: store it. Send it as X-API-Key (see docs/api.md#authentication).")  # fmt: skip


def keys(settings: Settings, args: argparse.Namespace) -> int:
    store = key_store(settings)
    if args.action == "create":
        print_new_key(*store.create(args.name))
    elif args.action == "list":
        for key in store.list():
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            print(f"{key.key_id}  {key.created_at:%Y-%m-%d %H:%M}  {state:<24}  {key.name}")
    elif store.revoke(args.key_id) is None:
        print(f"no key {args.key_id}", file=sys.stderr)
        return 1
    else:
        print(f"revoked {args.key_id}")
    return 0


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
        if first := pipeline.first_key():
            print("no API key existed; created one:")
            print_new_key(*first)
            sys.stdout.flush()
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
    keys_parser = commands.add_parser("keys", help="create, list or revoke API keys")
    actions = keys_parser.add_subparsers(dest="action", required=True)
    actions.add_parser("create", help="create a key; prints it once").add_argument("name", help="what the key is for")
    actions.add_parser("list", help="every key: id, creation time, state, name")
    revoke = actions.add_parser("revoke", help="revoke a key; refused within MEDIALANE_API_KEY_CACHE_SECONDS")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "up":
        return up(settings)
    if args.command == "keys":
        return keys(settings, args)
    if args.command == "worker":
        from compose.worker import run

        run(settings)
    elif args.command == "ingest":
        from ingest.app import run

        run(settings)
    elif args.command == "init":
        from adapters.kafka import create_topics
        from adapters.objects import ObjectStore

        asyncio.run(create_topics(settings))
        ObjectStore(settings).ensure_bucket()
    elif args.command == "schemas":
        from schemas.export import write_schemas

        for path in write_schemas():
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
