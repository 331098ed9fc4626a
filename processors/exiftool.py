"""One kept-open exiftool process per worker process (``-stay_open``).

Starting exiftool costs ~80 ms of Perl start-up; a kept-open process answers in a few ms per file.
This is a small client of the stay_open protocol rather than pyexiftool because pyexiftool has no
timeout on a call (nor on its start-up ``-ver``) and can only be killed through private attributes;
here every read has a deadline, and a hung or crashed exiftool is killed with its process group.

Not thread-safe: one caller at a time, which is what one instance per worker process gives.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

from schemas.errors import ExtractFailed

MIN_VERSION = (12, 38)
PR_SET_PDEATHSIG = 1
# -G0:1 names both group families ("MakerNotes:Canon"), so tags can be sorted into sections without a
# table of maker names; -l gives the numeric value ("num") beside the printed one ("val") in one pass;
# -D gives each tag's id, on which processors/metadata.py joins EXIF tags to their stored directory entries.
EXTRACT_ARGS = ("-json", "-G0:1", "-long", "-struct", "-D")
_EXTENSION = re.compile(r"[a-z0-9]{1,8}")


class ExifTool:
    """A kept-open exiftool; ``extract`` returns the JSON object exiftool prints for one file."""

    def __init__(self, path: str, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._sequence = 0
        self._tmpdir = tempfile.mkdtemp(prefix="medialane-exiftool-")
        try:
            self.version = self._start()
        except BaseException:
            self.close()
            raise

    def extract(self, data: bytes, extension: str) -> dict[str, Any]:
        """Metadata of ``data`` as ``exiftool -j -G0:1 -l -struct -D`` prints it.

        ``extension`` (the sniffed one, e.g. "jpg") names the temp file, because exiftool uses it as a
        hint for formats without magic bytes (MP3, AAC).
        """
        if not _EXTENSION.fullmatch(extension):
            raise ValueError(f"not a file extension: {extension!r}")
        path = os.path.join(self._tmpdir, f"{secrets.token_hex(8)}.{extension}")
        with open(path, "xb") as f:
            f.write(data)
        try:
            out = self._execute(*EXTRACT_ARGS, path)
        finally:
            os.unlink(path)
        return _parse_json(out)

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
            self._execute(*args, "-o", target, source)
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

    def close(self) -> None:
        if self._proc is not None:
            self._stop()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> ExifTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> str:
        try:
            self._proc = subprocess.Popen(
                [self._path, "-stay_open", "True", "-@", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise ExtractFailed(f"cannot start exiftool {self._path!r}: {exc}") from exc
        version = self._execute("-ver").strip()
        if not _is_supported(version):
            self._kill()
            needed = ".".join(map(str, MIN_VERSION))
            raise ExtractFailed(f"exiftool {self._path!r} is version {version[:40]!r}; medialane needs >= {needed}")
        return version

    def _execute(self, *args: str) -> str:
        """Run one stay_open command; on timeout or crash kill exiftool so the next call starts afresh."""
        if self._proc is None:
            self._start()
        self._sequence += 1
        ready = f"{{ready{self._sequence}}}".encode()
        command = "\n".join((*args, f"-execute{self._sequence}", "")).encode()
        try:
            self._proc.stdin.write(command)
            self._proc.stdin.flush()
            return self._read_until(ready).decode("utf-8", "replace")
        except TimeoutError:
            self._kill()
            raise ExtractFailed(f"exiftool took longer than {self._timeout:g} s", code="extract_timeout") from None
        except (BrokenPipeError, EOFError):
            status = self._kill()
            raise ExtractFailed(f"exiftool exited unexpectedly (status {status})") from None

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


def _is_supported(version: str) -> bool:
    match = re.fullmatch(r"(\d+)\.(\d+)", version)
    return match is not None and (int(match[1]), int(match[2])) >= MIN_VERSION


def _parse_json(out: str) -> dict[str, Any]:
    try:
        documents = json.loads(out)
    except ValueError:
        raise ExtractFailed(f"exiftool printed invalid JSON: {out[:200]!r}") from None
    if not isinstance(documents, list) or len(documents) != 1 or not isinstance(documents[0], dict):
        raise ExtractFailed("exiftool did not return one JSON object")
    return documents[0]
