"""Benchmark: the metadata stage with one kept-open exiftool, against one exiftool process per file.

    python -m bench.metadata [SAMPLES_DIR] [--rounds N]

The stage is measured in one process, and with one process per core as ``medialane up`` deploys it
(one worker per core, each with its own exiftool); the baseline runs one exiftool per file in turn.

Both sides read the same image files in the same run, from paths (the baseline is given paths too).
Each side gets one untimed pass first, so both are measured with a warm page cache and (for the
kept-open exiftool) with its Perl modules loaded, as in a long-running worker; nothing is carried from
one file to the next. The machine's speed drifts by 10-20% over minutes, so the sides are measured in
turn, round after round (each measurement at least MIN_SECONDS long), and each side's median round is
reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from adapters.exiftool import ExifTool, KeptOpen
from media.media_type import sniff
from media.metadata import extract_metadata
from schemas.errors import MedialaneError
from schemas.settings import Settings

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif-samples"


def image_files(root: Path) -> list[Path]:
    files = [path for path in sorted(root.rglob("*")) if path.is_file()]
    return [path for path in files if (data := path.read_bytes()) and sniff(data).family == "image"]


# A measurement repeats the files for at least this long, so that a burst of load on the (shared) machine
# weighs no more on a fast side than on the slow baseline.
MIN_SECONDS = 4.0


def files_per_second(files: list[Path], run: Callable[[Path], object]) -> float:
    return _rate(files, lambda: [run(path) for path in files])


def _rate(files: list[Path], one_pass: Callable[[], object]) -> float:
    passes = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < MIN_SECONDS:
        one_pass()
        passes += 1
    return passes * len(files) / elapsed


def kept_open_stage(exiftool: ExifTool) -> Callable[[Path], object]:
    def run(path: Path) -> object:
        try:
            return extract_metadata(path.read_bytes(), path.name, exiftool)
        except MedialaneError as exc:
            return exc

    return run


def kept_open_exiftool_alone(exiftool: ExifTool) -> Callable[[Path], object]:
    """The exiftool share of the stage: what is left when Pillow, hashing and grouping are taken out."""

    def run(path: Path) -> object:
        data = path.read_bytes()
        return exiftool.extract(data, sniff(data).extension)

    return run


def kept_open_tool(tool: KeptOpen) -> Callable[[Path], object]:
    """What the reader replaces: the exiftool tool kept open, printing what the document is built from."""

    def run(path: Path) -> object:
        return tool.execute("-json", "-G0:1", "-long", "-struct", "-D", str(path))

    return run


def per_file_exiftool(executable: str) -> Callable[[Path], object]:
    def run(path: Path) -> object:
        return subprocess.run([executable, "-j", "-G1", str(path)], capture_output=True, check=False)

    return run


_worker_stage: Callable[[Path], object] | None = None


def _start_worker(path: str, timeout: float) -> None:
    global _worker_stage
    _worker_stage = kept_open_stage(ExifTool(path, timeout))


def _stage_in_worker(path: Path) -> None:
    _worker_stage(path)


class Scaled:
    """The stage scaled out: ``processes`` workers, each with its own kept-open exiftool, share the files."""

    def __init__(self, settings: Settings, processes: int) -> None:
        self._pool = ProcessPoolExecutor(
            processes, initializer=_start_worker, initargs=(settings.exiftool_path, settings.exiftool_timeout)
        )

    def files_per_second(self, files: list[Path]) -> float:
        return _rate(files, lambda: list(self._pool.map(_stage_in_worker, files, chunksize=4)))

    def close(self) -> None:
        self._pool.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="?", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each side (median reported)")
    args = parser.parse_args()
    settings = Settings()
    files = image_files(args.samples)
    cores = os.cpu_count() or 1
    tool = KeptOpen([settings.exiftool_path, "-stay_open", "True", "-@", "-"], settings.exiftool_timeout)
    with ExifTool(settings.exiftool_path, settings.exiftool_timeout) as exiftool:
        scaled = Scaled(settings, cores)
        sides = {
            "stage": lambda: files_per_second(files, kept_open_stage(exiftool)),
            "alone": lambda: files_per_second(files, kept_open_exiftool_alone(exiftool)),
            "tool": lambda: files_per_second(files, kept_open_tool(tool)),
            "scaled": lambda: scaled.files_per_second(files),
            "baseline": lambda: files_per_second(files, per_file_exiftool(settings.exiftool_path)),
        }
        rates: dict[str, list[float]] = {side: [] for side in sides}
        try:
            for measure in sides.values():
                measure()
            for _ in range(args.rounds):
                for side, measure in sides.items():
                    rates[side].append(measure())
        finally:
            scaled.close()
            tool.close()
    median = {side: statistics.median(values) for side, values in rates.items()}
    spread = {side: f"{min(values):.1f}–{max(values):.1f}" for side, values in rates.items()}
    print(f"{len(files)} image files from {args.samples}, exiftool {exiftool.version}, "
          f"median of {args.rounds} rounds (range in brackets)\n")  # fmt: skip
    print("| pipeline | files/s |")
    print("| --- | ---: |")
    rows = (
        ("stage", "extract_metadata, one kept-open exiftool"),
        ("alone", "its exiftool share alone (`ExifTool.extract`, adapters/exiftool_reader.pl)"),
        ("tool", "for comparison: the exiftool tool kept open, `-json -G0:1 -long -struct -D`"),
        ("baseline", "`exiftool -j -G1 <file>`, one process per file"),
        ("scaled", f"extract_metadata, {cores} worker processes (one per core)"),
    )
    for side, label in rows:
        print(f"| {label} | {median[side]:.1f} ({spread[side]}) |")
    print(f"| ratio, one process / per-file exiftool | {median['stage'] / median['baseline']:.1f}x |")
    print(f"| ratio, {cores} processes / per-file exiftool | {median['scaled'] / median['baseline']:.1f}x |")


if __name__ == "__main__":
    main()
