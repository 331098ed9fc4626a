"""Kept-open exiftool processes, one set per worker process.

Starting exiftool costs ~80 ms of Perl start-up; a kept-open process answers in a few ms per file.
Reads go to ``exiftool_reader.pl``, a loop over exiftool's own library that prints what
``exiftool -json -G0:1 -long -struct -D`` prints (less "desc" and the System tags, ids on EXIF tags
only) for about half the tool's CPU time per file: the tool repeats per-command work (option parsing,
converting each tag twice, group naming, sorting) that the loop does once or not at all, and the loop
compiles exiftool's conversion strings once rather than for every value. Writes
(stripping) go to the exiftool command-line tool in ``-stay_open`` mode, started on first use. Both
speak the stay_open protocol through one small client rather than pyexiftool, because pyexiftool has
no timeout on a call (nor on its start-up ``-ver``) and can only be killed through private attributes;
here every read has a deadline, and a hung or crashed process is killed with its process group and
restarted on the next call.

One instance per worker process, shared by the jobs it runs at once: one read and one write at a time,
each process held by a lock for the whole exchange (and a read's for the block of ``reading``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pydantic_core

from schemas.errors import ExtractFailed

MIN_VERSION = (12, 38)
PR_SET_PDEATHSIG = 1
READER = Path(__file__).with_name("exiftool_reader.pl")
# Perl spends much of a file's parse allocating and freeing small values: with tcmalloc (Debian's
# libtcmalloc-minimal4, which `make setup` and the image install) the reader takes ~15% less CPU per
# file than with glibc's malloc (docs/benchmarks.md). Without it exiftool runs as it is.
TCMALLOC = ctypes.util.find_library("tcmalloc_minimal")
_EXTENSION = re.compile(r"[a-z0-9]{1,8}")


class ExifTool:
    """An exiftool installation kept open: ``extract`` reads a file's tags, ``write`` rewrites a file.

    ``path`` is the exiftool script; the reader loads the library beside it (``lib/``, as the script
    itself does) or else Perl's own, so reads and writes use one exiftool version.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self._tmpdir = tempfile.mkdtemp(prefix="medialane-exiftool-")
        script = shutil.which(path)
        if script is None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise ExtractFailed(f"cannot start exiftool {path!r}: no such program")
        library = Path(os.path.realpath(script)).parent / "lib"
        include = ["-I", str(library)] if library.is_dir() else []
        env = _with_tcmalloc(os.environ)
        self._reader = KeptOpen(["perl", *include, str(READER)], timeout, env)
        self._writer = KeptOpen([script, "-stay_open", "True", "-@", "-"], timeout, env)
        self._reading = threading.Lock()
        self._writing = threading.Lock()
        try:
            self.version = self._reader.execute("-ver").strip()
        except BaseException:
            self.close()
            raise
        if not _is_supported(self.version):
            self.close()
            needed = ".".join(map(str, MIN_VERSION))
            raise ExtractFailed(f"exiftool {path!r} is version {self.version[:40]!r}; medialane needs >= {needed}")

    def extract(self, data: bytes, extension: str) -> dict[str, Any]:
        """Metadata of ``data`` as ``exiftool -j -G0:1 -l -struct -D`` prints it (see exiftool_reader.pl).

        ``extension`` (the sniffed one, e.g. "jpg") names the temp file, because exiftool uses it as a
        hint for formats without magic bytes (MP3, AAC).
        """
        with self.reading(data, extension) as tags:
            return tags()

    @contextlib.contextmanager
    def reading(self, data: bytes, extension: str) -> Iterator[Callable[[], dict[str, Any]]]:
        """``extract`` in the background: the block runs while exiftool parses ``data``; call what it is
        given for the tags. A block that ends without them still waits for exiftool's answer (within the
        timeout), so the next read gets its own."""
        if not _EXTENSION.fullmatch(extension):
            raise ValueError(f"not a file extension: {extension!r}")
        path = os.path.join(self._tmpdir, f"{secrets.token_hex(8)}.{extension}")
        with open(path, "xb") as f:
            f.write(data)
        try:
            with self._reading:
                answer = self._reader.send(path)
                waiting = True
                parsed: dict[str, Any] = {}

                def tags() -> dict[str, Any]:
                    nonlocal waiting
                    if waiting:
                        waiting = False
                        parsed.update(_parse_json(self._reader.receive(answer)))
                    return parsed

                try:
                    yield tags
                finally:
                    if waiting:
                        with contextlib.suppress(ExtractFailed):
                            self._reader.receive(answer)
        finally:
            os.unlink(path)

    def write(self, data: bytes, extension: str, *args: str) -> bytes:
        """``data`` as ``exiftool <args> -o <out> <in>`` rewrites it, e.g. ``write(data, "tif", "-all=")``.

        Each argument is one line of the stay_open argument stream, so an argument holding a line break
        could smuggle in further options or a second command: it is refused. Raises ExtractFailed with
        code ``write_failed`` when exiftool writes no file (a format it cannot write, or a file it finds
        broken); its reason goes to stderr, which the kept-open process does not keep.
        """
        if not _EXTENSION.fullmatch(extension):
            raise ValueError(f"not a file extension: {extension!r}")
        if any("\n" in arg or "\r" in arg for arg in args):
            raise ValueError("an exiftool argument holds a line break")
        name = secrets.token_hex(8)
        source = os.path.join(self._tmpdir, f"{name}.{extension}")
        target = os.path.join(self._tmpdir, f"{name}-out.{extension}")
        with open(source, "xb") as f:
            f.write(data)
        try:
            with self._writing:
                self._writer.execute(*args, "-o", target, source)
            with open(target, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ExtractFailed(
                f"exiftool wrote no .{extension} file: it cannot write this format or this file",
                code="write_failed",
            ) from None
        finally:
            for path in (source, target):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    @property
    def restarts(self) -> dict[str, int]:
        """Starts after the first of each kept-open process: each follows a crash or a timeout that killed it."""
        return {"reader": max(self._reader.starts - 1, 0), "writer": max(self._writer.starts - 1, 0)}

    def close(self) -> None:
        for process in (getattr(self, "_reader", None), getattr(self, "_writer", None)):
            if process is not None:
                process.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> ExifTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeptOpen:
    """One process speaking exiftool's stay_open protocol, started on first use, every answer on a deadline."""

    def __init__(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> None:
        self._argv = argv
        self._timeout = timeout
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._sequence = 0
        self.starts = 0

    def execute(self, *args: str) -> str:
        """Run one command; on timeout or crash kill the process so the next call starts afresh."""
        return self.receive(self.send(*args))

    def send(self, *args: str) -> bytes:
        """Start one command; ``receive`` with what this returns gives its answer."""
        if self._proc is None:
            self._start()
        self._sequence += 1
        command = "\n".join((*args, f"-execute{self._sequence}", "")).encode()
        try:
            self._proc.stdin.write(command)
            self._proc.stdin.flush()
        except BrokenPipeError:
            status = self._kill()
            raise ExtractFailed(f"exiftool exited unexpectedly (status {status})") from None
        return f"{{ready{self._sequence}}}".encode()

    def receive(self, ready: bytes) -> str:
        """The answer to the command ``send`` gave ``ready`` for, within the timeout."""
        try:
            return self._read_until(ready).decode("utf-8", "replace")
        except TimeoutError:
            self._kill()
            raise ExtractFailed(f"exiftool took longer than {self._timeout:g} s", code="extract_timeout") from None
        except EOFError:
            status = self._kill()
            raise ExtractFailed(f"exiftool exited unexpectedly (status {status})") from None

    def close(self) -> None:
        if self._proc is not None:
            self._stop()

    def _start(self) -> None:
        try:
            self._proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=self._env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            self.starts += 1
        except OSError as exc:
            raise ExtractFailed(f"cannot start exiftool {self._argv[0]!r}: {exc}") from exc

    def _read_until(self, ready: bytes) -> bytes:
        deadline = time.monotonic() + self._timeout
        fd = self._proc.stdout.fileno()
        chunks: list[bytes] = []
        tail = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise TimeoutError
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError
                chunks.append(chunk)
                # The marker may straddle two reads; only the last bytes can hold it.
                tail = (tail + chunk)[-len(ready) - 2 :]
                if tail.rstrip().endswith(ready):
                    out = b"".join(chunks).rstrip()
                    return out[: -len(ready)]

    def _stop(self) -> None:
        try:
            self._proc.stdin.write(b"-stay_open\nFalse\n")
            self._proc.stdin.flush()
            self._proc.wait(timeout=self._timeout)
            self._release()
        except (OSError, subprocess.TimeoutExpired):
            self._kill()

    def _kill(self) -> int | None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        status = self._proc.wait()
        self._release()
        return status

    def _release(self) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self._proc = None


def _die_with_parent() -> None:
    # exiftool -stay_open keeps polling its argument file after EOF, so without this it would outlive a
    # killed worker (its own session keeps it out of the worker's process group).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _with_tcmalloc(environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    if TCMALLOC:
        env["LD_PRELOAD"] = " ".join(filter(None, (env.get("LD_PRELOAD"), TCMALLOC)))
    return env


def _is_supported(version: str) -> bool:
    match = re.fullmatch(r"(\d+)\.(\d+)", version)
    return match is not None and (int(match[1]), int(match[2])) >= MIN_VERSION


def _parse_json(out: str) -> dict[str, Any]:
    try:
        # pydantic's decoder: 55 % of the standard library's time on a camera file's tags.
        documents = pydantic_core.from_json(out)
    except ValueError:
        raise ExtractFailed(f"exiftool printed invalid JSON: {out[:200]!r}") from None
    if not isinstance(documents, list) or len(documents) != 1 or not isinstance(documents[0], dict):
        raise ExtractFailed("exiftool did not return one JSON object")
    return documents[0]
