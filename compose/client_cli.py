"""The commands for people: ``submit``, ``jobs``, ``job``, ``similar`` and ``uniquify``.

They talk to a running medialane over its HTTP API only (compose/api_client.py), so they work from any
directory and any machine: ``MEDIALANE_URL`` and ``MEDIALANE_KEY`` (or ``--url`` and ``--key``) say where and as whom.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import zipfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from compose.api_client import ApiClient, ApiError
from compose.submit_cli import OK, SUMMARY, UsageError, collect, run_submit, summary_tables

DEFAULT_URL = "http://127.0.0.1:8080"
JOB_OPS = ("metadata", "phash", "strip")
KEEP = ("orientation", "icc", "copyright")
PHASH = re.compile(r"[0-9a-f]{16}")


def number(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high`` (``choices=range`` would list them all)."""

    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text}: a whole number from {low} to {high}")
        return int(text)

    return parse


def names(allowed: tuple[str, ...], what: str):
    """An argparse type: comma-separated names, each one of ``allowed``."""

    def parse(text: str) -> list[str]:
        given = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in given if name not in allowed]
        if unknown or (not given and what == "ops"):
            raise argparse.ArgumentTypeError(f"{', '.join(unknown) or 'none given'}: {what} are {', '.join(allowed)}")
        return given

    return parse


def add_client_commands(commands: argparse._SubParsersAction) -> None:
    server = argparse.ArgumentParser(add_help=False)
    where = server.add_argument_group("server")
    where.add_argument("--url", default=os.environ.get("MEDIALANE_URL", DEFAULT_URL),
                       help=f"the API's base URL (default: MEDIALANE_URL, else {DEFAULT_URL})")  # fmt: skip
    where.add_argument("--key", default=os.environ.get("MEDIALANE_KEY"),
                       help="the API key (default: MEDIALANE_KEY; prefer it, a --key stays in shell history)")  # fmt: skip

    submit = commands.add_parser("submit", parents=[server], help="send files and folders, write their results to a folder",
                                 description="Send files and folders (recursed, hidden files skipped), show the progress, "
                                 "write each file's results under --out as the inputs are laid out, and one line a file "
                                 "in summary.jsonl. Exit status 1 when any file was refused or its job did not complete.")  # fmt: skip
    submit.add_argument("paths", nargs="+", metavar="PATH", help="a file or a folder")
    submit.add_argument("--ops", type=names(JOB_OPS, "ops"), default=["metadata"],
                        help="comma-separated: metadata, phash, strip (default: metadata)")  # fmt: skip
    submit.add_argument("--keep", type=names(KEEP, "keep items"),
                        help="what strip keeps, comma-separated: orientation, icc, copyright (default: orientation,icc)")  # fmt: skip
    submit.add_argument("--out", type=Path, default=Path("medialane-results"), metavar="DIR", help="results folder (default: ./medialane-results)")
    submit.add_argument("--concurrency", type=number(1, 32), default=4, metavar="N",
                        help="files in flight at once (default: 4)")  # fmt: skip

    jobs = commands.add_parser("jobs", parents=[server], help="your jobs, newest first")
    jobs.add_argument("--limit", type=number(1, 100), default=20, help="how many (default: 20)")
    jobs.add_argument("--cursor", help="the next page, as the previous page's last line gives it")

    job = commands.add_parser("job", parents=[server], help="one job's document, as JSON")
    job.add_argument("job_id", metavar="ID")

    similar = commands.add_parser("similar", parents=[server], help="your images near an image file or a pHash")
    similar.add_argument("query", metavar="FILE|HASH", help="an image file, or a pHash of 16 hex digits")
    similar.add_argument("--max-distance", type=number(0, 32), default=10,
                         help="largest Hamming distance (default: 10)")  # fmt: skip
    similar.add_argument("--limit", type=number(1, 1000), default=20, help="most results (default: 20)")
    similar.add_argument("--mirror", action="store_true", help="also match mirrored copies (a FILE only)")

    uniquify = commands.add_parser("uniquify", parents=[server], help="make perturbed copies of images, saved to a folder")
    uniquify.add_argument("files", nargs="+", metavar="FILE", help="an image (up to 50)")
    uniquify.add_argument("--count", type=number(1, 100), default=10, metavar="N", help="copies of each image (default: 10)")
    uniquify.add_argument("--out", type=Path, default=Path("medialane-uniquified"), metavar="DIR", help="folder for the copies (default: ./medialane-uniquified)")
    uniquify.add_argument("--seed", type=int, help="makes the copies reproducible")


def run_client(args: argparse.Namespace) -> int:
    """Runs one people's command; a user's mistake or a refusal ends it with a message, never a traceback."""
    stdout, stderr = Console(), Console(stderr=True)
    if not args.key:
        print("medialane: no API key: set MEDIALANE_KEY (or pass --key). `medialane up` prints the first one; "
              "`medialane keys create NAME` makes more.", file=sys.stderr)  # fmt: skip
        return 2
    key = args.key.strip()
    if not key.isprintable() or " " in key:
        # Said before any request: aiohttp would refuse the header with a traceback.
        print("medialane: the API key (MEDIALANE_KEY or --key) holds spaces or control characters; "
              "it is one word, ml_…", file=sys.stderr)  # fmt: skip
        return 2
    try:
        return asyncio.run(COMMAND_RUNNERS[args.command](ApiClient(args.url, key), args, stdout, stderr))
    except UsageError as exc:
        print(f"medialane {args.command}: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        hint = "; check MEDIALANE_KEY or --key" if exc.refused_key else ""
        print(f"medialane {args.command}: {exc}{hint}", file=sys.stderr)
        return 1
    except OSError as exc:
        # A file that cannot be read or an --out folder that cannot be written.
        print(f"medialane {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


async def submit(client: ApiClient, args, stdout: Console, stderr: Console) -> int:
    sources = collect(args.paths, args.out)
    if args.keep is not None and "strip" not in args.ops:
        raise UsageError("--keep is strip's option: add strip to --ops")
    async with client:
        lines = await run_submit(client, sources, args.out, args.ops, args.keep, args.concurrency, stderr)
    for table in summary_tables(lines, args.out):
        stdout.print(table)
    print(f"results in {args.out}, a line a file in {args.out / SUMMARY}")
    return 0 if all(line["status"] == OK for line in lines) else 1


async def jobs(client: ApiClient, args, stdout: Console, stderr: Console) -> int:
    async with client:
        page = await client.jobs(args.limit, args.cursor)
    table = Table("job", "status", "%", "ops", "created", "error")
    # Whole job ids, for `medialane job ID`: the other columns give way.
    table.columns[0].no_wrap = True
    table.columns[3].overflow = table.columns[5].overflow = "fold"
    for job in page["jobs"]:
        table.add_row(job["job_id"], job["status"], str(job["percent"]), ",".join(job["ops"]),
                      job["created_at"][:16].replace("T", " "), (job.get("error") or {}).get("code", ""))  # fmt: skip
    stdout.print(table)
    if page["next_cursor"]:
        print(f"more: medialane jobs --cursor {page['next_cursor']}")
    return 0


async def job(client: ApiClient, args, stdout: Console, stderr: Console) -> int:
    async with client:
        document = await client.job(args.job_id)
    if stdout.is_terminal:
        stdout.print_json(data=document)
    else:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    return 0


async def similar(client: ApiClient, args, stdout: Console, stderr: Console) -> int:
    params = {"max_distance": str(args.max_distance), "limit": str(args.limit)}
    image = Path(args.query)
    if image.is_file():
        query = {"image": image, **params, **({"transforms": "mirror"} if args.mirror else {})}
    elif PHASH.fullmatch(args.query.lower()):
        if args.mirror:
            raise UsageError("--mirror needs an image file, not a bare pHash")
        query = {"phash": args.query.lower(), **params}
    else:
        raise UsageError(f"{args.query}: neither a file nor a pHash (16 hex digits)")
    async with client:
        found = await client.similar(**query)
    table = Table("distance", "job", "name", "mirrored", "same file",
                  title=f"within {found['max_distance']} of {found['phash']}: {len(found['results'])} image(s)")  # fmt: skip
    table.columns[1].no_wrap = True
    table.columns[2].overflow = "fold"
    for match in found["results"]:
        same = {True: "yes", False: "no", None: ""}[match["exact_duplicate"]]
        table.add_row(str(match["distance"]), match["job_id"], match["name"], "yes" if match["mirrored"] else "", same)
    stdout.print(table)
    return 0


async def uniquify(client: ApiClient, args, stdout: Console, stderr: Console) -> int:
    images = [Path(name) for name in args.files]
    if missing := [str(path) for path in images if not path.is_file()]:
        raise UsageError(f"no such file: {', '.join(missing)}")
    # names=2: each copy named after its source (<stem>_<n>.jpg), which a person can tell apart.
    params = {"copies": str(args.count), "names": "2"} | ({"seed": str(args.seed)} if args.seed is not None else {})
    async with client:
        accepted = await client.uniquify(images, params)
        with Progress(TextColumn("uniquify"), BarColumn(), TaskProgressColumn(), console=stderr) as progress:
            task = progress.add_task("", total=100)
            done = await client.wait_for(accepted["job_id"], lambda job: progress.update(task, completed=job["percent"]))
        if done["status"] != OK or "uniquify" not in done.get("result", {}):
            error = done.get("error") or {}
            print(f"medialane uniquify: job {done['job_id']} {done['status']}: {error.get('message', '')} "
                  f"({error.get('code', 'no result')})", file=sys.stderr)  # fmt: skip
            return 1
        result = done["result"]["uniquify"]
        args.out.mkdir(parents=True, exist_ok=True)
        archive = args.out / f"uniquified-{done['job_id']}.zip"
        await client.download(result["downloadUrl"], archive)
    # extractall drops absolute paths and "..": the archive cannot write outside --out.
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(args.out)
    archive.unlink()
    print(f"{result['copies']} copies and manifest.json in {args.out} (job {done['job_id']})")
    for failure in result.get("failed", []):
        print(f"a copy of {images[failure['source']]} failed: {failure['code']}")
    return 1 if result.get("failed") else 0


COMMAND_RUNNERS = {"submit": submit, "jobs": jobs, "job": job, "similar": similar, "uniquify": uniquify}
