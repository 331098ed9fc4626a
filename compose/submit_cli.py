"""``medialane submit PATH... --ops metadata,phash,strip --out DIR``: files and folders through the API.

Results go under DIR as the inputs are laid out: ``x.jpg.metadata.json`` and ``x.stripped.jpg`` beside
where ``x.jpg`` would be, and ``summary.jsonl`` with a line per file, written as each one ends so an
interrupted run keeps what it finished.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from compose.api_client import ApiClient, ApiError

SUMMARY = "summary.jsonl"
OK = "completed"


class UsageError(Exception):
    """A mistake in the command line, told before anything is sent."""


@dataclass(frozen=True)
class Source:
    path: Path
    rel: PurePosixPath  # its place under --out, and its name in the summary


def collect(paths: list[str], out: Path) -> list[Source]:
    """Every file named or under a folder named, hidden ones (``.DS_Store``, ``.git/``) and the output
    folder left out, so a second run over the same folder does not submit the first run's results."""
    out = out.resolve()
    sources: dict[PurePosixPath, Path] = {}
    for given in map(Path, paths):
        if given.is_dir():
            root = PurePosixPath(given.resolve().name)
            found = (
                (root / path.relative_to(given).as_posix(), path)
                for path in sorted(given.rglob("*"))
                if path.is_file()
                and not any(part.startswith(".") for part in path.relative_to(given).parts)
                and not path.resolve().is_relative_to(out)
            )
        elif given.is_file():
            found = iter([(PurePosixPath(given.name), given)])
        else:
            raise UsageError(f"{given}: no such file or folder")
        for rel, path in found:
            if rel in sources and sources[rel].resolve() != path.resolve():
                raise UsageError(f"{sources[rel]} and {path} would both be written to {out / rel}: submit them separately")
            sources[rel] = path
    if not sources:
        raise UsageError("no files to submit (hidden files are skipped)")
    return [Source(path, rel) for rel, path in sources.items()]


def op_outcomes(job: dict) -> dict[str, dict]:
    """Each op of an ended job: its status and error code, from the job's per-op ``outcomes``; a server
    without them keeps the results of the ops that finished (a failed job too), so the others failed."""
    outcomes = job.get("outcomes") or {}
    return {
        op: {"status": outcomes[op]["status"], "error": (outcomes[op].get("error") or {}).get("code")}
        if op in outcomes else {"status": OK if op in job.get("result", {}) else "failed", "error": None}
        for op in job.get("ops", [])
    }  # fmt: skip


class Submitter:
    def __init__(self, client: ApiClient, out: Path, ops: list[str], keep: list[str] | None) -> None:
        self.client, self.out, self.ops, self.keep = client, out, ops, keep
        self.lines: list[dict] = []
        self.summary = (out / SUMMARY).open("w")

    async def one(self, source: Source) -> dict:
        line = {"path": str(source.rel), "job_id": None, "status": None, "ops": {}, "phash": None,
                "error": None, "message": None, "outputs": []}  # fmt: skip
        try:
            job = await self.client.submit(source.path, self.ops, self.keep)
            error = job.get("error") or {}
            line |= {"job_id": job["job_id"], "status": job["status"], "ops": op_outcomes(job),
                     "phash": (job.get("result", {}).get("phash") or {}).get("phash"),
                     "error": error.get("code"), "message": error.get("message")}  # fmt: skip
            line["outputs"] = await self.write_results(source, job)
        except ApiError as exc:
            if exc.refused_key:
                raise
            # An answer about the file (4xx) refuses it; anything else, a 429 whose retries ran out among
            # them, is this run's trouble, not the file's.
            status = "refused" if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429 else "error"
            line |= {"status": status, "error": exc.code, "message": exc.message}
        except OSError as exc:
            line |= {"status": "error", "error": "unreadable", "message": f"{source.path}: {exc.strerror or exc}"}
        self.summary.write(json.dumps(line) + "\n")
        self.summary.flush()
        self.lines.append(line)
        return line

    async def write_results(self, source: Source, job: dict) -> list[str]:
        target = self.out / source.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        result, written = job.get("result", {}), []
        if "metadata" in result:
            path = target.with_name(f"{target.name}.metadata.json")
            path.write_text(json.dumps(result["metadata"], indent=2, ensure_ascii=False))
            written.append(path)
        if "strip" in result:
            path = target.with_name(f"{target.stem}.stripped{target.suffix}")
            await self.client.download(result["strip"]["downloadUrl"], path)
            written.append(path)
        return [path.relative_to(self.out).as_posix() for path in written]


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} files/s" if speed else "… files/s", style="progress.data.speed")


async def run_submit(client: ApiClient, sources: list[Source], out: Path, ops: list[str],
                     keep: list[str] | None, concurrency: int, console: Console) -> list[dict]:  # fmt: skip
    await client.check()
    out.mkdir(parents=True, exist_ok=True)
    submitter = Submitter(client, out, ops, keep)
    slots = asyncio.Semaphore(concurrency)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TextColumn("left"), TimeRemainingColumn())  # fmt: skip
    with submitter.summary, Progress(*columns, console=console) as progress:
        task = progress.add_task("submitting", total=len(sources))

        async def one(source: Source) -> None:
            async with slots:
                line = await submitter.one(source)
            if line["status"] != OK:
                progress.console.print(f"{line['path']}: {line['status']} {line['error'] or ''}".rstrip(),
                                       markup=False, highlight=False)  # fmt: skip
            bad = sum(entry["status"] != OK for entry in submitter.lines)
            notes = ([f"{bad} not completed"] if bad else []) + (
                [f"{client.retries} busy answers waited out"] if client.retries else [])  # fmt: skip
            progress.update(task, advance=1, description=f"submitting ({', '.join(notes)})" if notes else "submitting")

        tasks = [asyncio.create_task(one(source)) for source in sources]
        try:
            await asyncio.gather(*tasks)
        finally:
            # A refused key ends the run: the files still waiting would be refused the same way.
            for pending in tasks:
                pending.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    order = {str(source.rel): i for i, source in enumerate(sources)}
    return sorted(submitter.lines, key=lambda line: order[line["path"]])


def summary_tables(lines: list[dict], out: Path) -> list[Table]:
    """Files by status; then the files that did not complete, with what to look up (their full job ids:
    ``medialane job ID``). Completed files are only counted: a folder of thousands stays readable."""
    counts = Counter(line["status"] for line in lines)
    totals = Table("status", "files", title=f"{len(lines)} file(s)")
    for status, n in sorted(counts.items(), key=lambda item: (item[0] != OK, item[0])):
        totals.add_row(status, str(n), style=None if status == OK else "red")
    problems = Table("file", "status", "error", "job", title="not completed")
    problems.columns[0].overflow = problems.columns[2].overflow = "fold"
    problems.columns[3].no_wrap = True
    for line in lines:
        if line["status"] != OK:
            problems.add_row(line["path"], line["status"], line["error"] or "", line["job_id"] or "")
    return [totals, problems] if problems.rows else [totals]
