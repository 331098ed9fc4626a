"""The ``medialane`` command: run the pipeline, and use it.

``up`` starts the embedded stack (object store, broker), creates the topics, then the workers and the
ingest service as child processes, restarts any of them that exits (compose/supervisor.py), and stops them all
in reverse order on Ctrl-C or SIGTERM.
``init``, ``worker`` and ``ingest`` are what a production deployment runs (see compose/).
``keys create NAME | list | revoke KEY_ID`` manages the API keys (the raw key is shown only on create).
The commands for people (``submit``, ``jobs``, ``job``, ``similar``, ``uniquify``) are in compose/client_cli.py.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time

from pydantic import ValidationError

from compose.client_cli import COMMAND_RUNNERS, add_client_commands, run_client
from schemas.settings import Settings, get_settings

EPILOG = """\
The commands submit, jobs, job, similar and uniquify use a running medialane through its API, from any
directory: set MEDIALANE_URL (default http://127.0.0.1:8080) and MEDIALANE_KEY, or pass --url and --key.
The server commands (up, keys, init, worker, ingest) read the MEDIALANE_* settings (schemas/settings.py);
up and keys keep the embedded stack's data in MEDIALANE_DATA_DIR (default ./.medialane).
`medialane COMMAND --help` tells more about each command."""


class CommandError(Exception):
    """A server command cannot run as asked: the message says why and what to do."""


def key_store(settings: Settings):
    """The key store and a line saying where it is. Reading the embedded stack's credentials never
    creates them: keys made with new ones would not be the running stack's."""
    from compose.embedded import ensure_credentials
    from adapters.apikeys import KeyStore
    from adapters.objects import ObjectStore

    if settings.s3_access_key:
        where = f"keys in bucket {settings.s3_bucket} at {settings.s3_endpoint} (MEDIALANE_S3_* settings)"
    else:
        data_dir = settings.data_dir.resolve()
        credentials = data_dir / "credentials.json"
        if not credentials.is_file():
            raise CommandError(
                f"no object-store credentials: {credentials} does not exist and MEDIALANE_S3_ACCESS_KEY is not set.\n"
                "Run this in the directory where `medialane up` ran, or set MEDIALANE_DATA_DIR to its data directory "
                "(or MEDIALANE_S3_* for a production object store)."
            )
        settings = ensure_credentials(settings.model_copy(update={"data_dir": data_dir}))
        where = f"keys of the embedded stack with data directory {data_dir} (object store {settings.s3_endpoint})"
    return KeyStore(ObjectStore(settings)), where


def print_new_key(raw: str, key) -> None:
    print(f"key_id:         {key.key_id}\n"
          f"API key:        {raw}\n"
          f"webhook secret: {key.webhook_secret}\n"
          "The API key is shown only now: store it. Send it as X-API-Key (see docs/api.md#authentication).")  # fmt: skip


def keys(settings: Settings, args: argparse.Namespace) -> int:
    from minio.error import S3Error
    from urllib3.exceptions import HTTPError

    store, where = key_store(settings)
    print(where, file=sys.stderr, flush=True)
    try:
        return key_action(store, args)
    except (S3Error, HTTPError, OSError) as exc:
        raise CommandError(f"the object store refused or did not answer ({exc}); is `medialane up` running "
                           "with this data directory?") from exc  # fmt: skip


def key_action(store, args: argparse.Namespace) -> int:
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


def supervisor_line(log_path):
    """Says a supervisor event on stderr, where `medialane up` runs, and appends it to ``log_path``."""

    def say(line: str) -> None:
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
        print(stamped, file=sys.stderr, flush=True)
        with log_path.open("a") as log:
            print(stamped, file=log)

    return say


def up(settings: Settings) -> int:
    from compose.embedded import EmbeddedPipeline, StackError
    from compose.supervisor import Supervisor

    pipeline = EmbeddedPipeline(settings)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    base = pipeline.settings.base_url
    print(f"medialane\n  page      {base}/\n  API docs  {base}/docs\n"
          f"  data      {pipeline.settings.data_dir}\n  logs      {pipeline.logs}", flush=True)  # fmt: skip
    try:
        print(f"starting: object store {settings.s3_endpoint}, broker {settings.kafka_bootstrap}, "
              f"{settings.workers} worker(s), ingest", flush=True)  # fmt: skip
        try:
            pipeline.start()
        except StackError as exc:
            raise CommandError(f"the stack did not start: {exc}\n(logs in {pipeline.logs})") from exc
        print(f"medialane is up at {base}/  (Ctrl-C stops)", flush=True)
        if first := pipeline.first_key():
            print("no API key existed; created one:")
            print_new_key(*first)
            sys.stdout.flush()
        metrics = pipeline.settings.data_dir / "metrics" / "supervisor.prom"
        print(f"supervising: a process that exits is restarted; restarts counted in {metrics}", flush=True)
        Supervisor(pipeline.processes(), metrics, supervisor_line(pipeline.logs / "supervisor.log")).run(stopping)
        return 0
    finally:
        print("stopping", flush=True)
        pipeline.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medialane", description="medialane: run the media pipeline, and use it.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    add_client_commands(commands)
    args = parser.parse_args(argv)
    if args.command in COMMAND_RUNNERS:
        return run_client(args)
    try:
        return server_command(args)
    except CommandError as exc:
        print(f"medialane {args.command}: {exc}", file=sys.stderr)
        return 1


def server_command(args: argparse.Namespace) -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise CommandError(f"a MEDIALANE_* setting is invalid:\n{exc}") from exc
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
