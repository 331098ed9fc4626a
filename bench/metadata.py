"""Benchmark: the metadata stage with one kept-open exiftool, against one exiftool process per file.

    python -m bench.metadata [SAMPLES_DIR]

The stage is measured in one process, and with one process per core as ``medialane up`` deploys it
(one worker per core, each with its own exiftool); the baseline runs one exiftool per file in turn.

Both sides read the same image files in the same run. Each side gets one untimed pass first, so both
are measured with a warm page cache and (for the kept-open exiftool) with its Perl modules loaded, as
in a long-running worker; nothing is carried from one file to the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from processors.exiftool import ExifTool
from processors.media_type import sniff
from processors.metadata import extract_metadata
from schemas.errors import MedialaneError
from schemas.settings import Settings

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif-samples"


def image_files(root: Path) -> list[tuple[str, bytes]]:
    files = [(str(path), path.read_bytes()) for path in sorted(root.rglob("*")) if path.is_file()]
    return [(path, data) for path, data in files if data and sniff(data).family == "image"]


def files_per_second(files: list[tuple[str, bytes]], run: Callable[[str, bytes], object]) -> float:
    for path, data in files:
        run(path, data)
    start = time.perf_counter()
    for path, data in files:
        run(path, data)
    return len(files) / (time.perf_counter() - start)


def kept_open_stage(exiftool: ExifTool) -> Callable[[str, bytes], object]:
    def run(path: str, data: bytes) -> object:
        try:
            return extract_metadata(data, Path(path).name, exiftool)
        except MedialaneError as exc:
            return exc

    return run


def kept_open_exiftool_alone(exiftool: ExifTool) -> Callable[[str, bytes], object]:
    """The exiftool share of the stage: what is left when Pillow, hashing and grouping are taken out."""

    def run(path: str, data: bytes) -> object:
        return exiftool.extract(data, sniff(data).extension)

    return run


def per_file_exiftool(executable: str) -> Callable[[str, bytes], object]:
    def run(path: str, data: bytes) -> object:
        return subprocess.run([executable, "-j", "-G1", path], capture_output=True, check=False)

    return run


_worker_exiftool: ExifTool | None = None


def _start_worker(path: str, timeout: float) -> None:
    global _worker_exiftool
    _worker_exiftool = ExifTool(path, timeout)


def _stage_in_worker(item: tuple[str, bytes]) -> None:
    kept_open_stage(_worker_exiftool)(*item)


def parallel_files_per_second(files: list[tuple[str, bytes]], settings: Settings, processes: int) -> float:
    """The stage scaled out: ``processes`` workers, each with its own kept-open exiftool, share the files."""
    with ProcessPoolExecutor(processes, initializer=_start_worker,
                             initargs=(settings.exiftool_path, settings.exiftool_timeout)) as pool:  # fmt: skip
        list(pool.map(_stage_in_worker, files, chunksize=4))
        start = time.perf_counter()
        list(pool.map(_stage_in_worker, files, chunksize=4))
        return len(files) / (time.perf_counter() - start)


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SAMPLES
    settings = Settings()
    files = image_files(root)
    with ExifTool(settings.exiftool_path, settings.exiftool_timeout) as exiftool:
        stage = files_per_second(files, kept_open_stage(exiftool))
        exiftool_alone = files_per_second(files, kept_open_exiftool_alone(exiftool))
    cores = os.cpu_count() or 1
    scaled = parallel_files_per_second(files, settings, cores)
    baseline = files_per_second(files, per_file_exiftool(settings.exiftool_path))
    print(f"{len(files)} image files from {root}, exiftool {exiftool.version}\n")
    print("| pipeline | files/s |")
    print("| --- | ---: |")
    print(f"| extract_metadata, one kept-open exiftool | {stage:.1f} |")
    print(f"| kept-open exiftool alone (`ExifTool.extract`) | {exiftool_alone:.1f} |")
    print(f"| `exiftool -j -G1 <file>`, one process per file | {baseline:.1f} |")
    print(f"| extract_metadata, {cores} worker processes (one per core) | {scaled:.1f} |")
    print(f"| ratio, one process / per-file exiftool | {stage / baseline:.1f}x |")
    print(f"| ratio, {cores} processes / per-file exiftool | {scaled / baseline:.1f}x |")


if __name__ == "__main__":
    main()
