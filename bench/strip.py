"""Benchmark: our JPEG/PNG strippers against exiftool ``-all=``, kept-open and one process per file.

    python -m bench.strip [FILES_PER_SET]

Three sets, each measured by all three in the same run on the same files: the JPEG samples, JPEGs of
at least 8 MP and PNGs with metadata chunks (both made at runtime in a temp dir from the samples, with
EXIF, GPS, an ICC profile and text). Ours runs with the default keep (it rebuilds a minimal EXIF, more
work than dropping everything); exiftool only deletes. Ours and the kept-open exiftool get one untimed
pass first, as in a long-running worker. At most FILES_PER_SET (default 24) files per set, spread over
the sorted list, so the one-process-per-file baseline stays bounded.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, PngImagePlugin

from adapters.exiftool import ExifTool
from media.media_type import sniff
from media.strip import KEEP_DEFAULT, strip_metadata
from schemas.errors import MedialaneError
from schemas.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
EIGHT_MP = (3504, 2336)
OURS_SECONDS = 1.0


def spread(items: list, count: int) -> list:
    step = max(1, len(items) / count)
    return [items[int(i * step)] for i in range(min(count, len(items)))]


def jpeg_samples(exiftool: ExifTool) -> list[bytes]:
    """Every JPEG sample our stripper accepts (corrupted.jpg is refused, so left out)."""
    files = [path.read_bytes() for path in sorted(SAMPLES.rglob("*")) if path.is_file()]
    return [data for data in files if sniff(data).extension == "jpg" and _strips(data, exiftool)]


def _strips(data: bytes, exiftool: ExifTool) -> bool:
    try:
        strip_metadata(data, KEEP_DEFAULT, exiftool)
    except MedialaneError:
        return False
    return True


def large_jpegs(count: int) -> list[bytes]:
    """``count`` JPEGs of 8.2 MP with camera EXIF (GPS, maker notes, thumbnail), an ICC profile and a comment."""
    sources = sorted((SAMPLES / "exif-samples" / "jpg" / "gps").glob("*.jpg"))
    icc = (SAMPLES / "exiftool-formats" / "ICC_Profile.icc").read_bytes()
    out = []
    for source in spread(sources, count):
        with Image.open(source) as im:
            buffer = io.BytesIO()
            im.resize(EIGHT_MP).save(buffer, "JPEG", quality=92, exif=im.info["exif"], icc_profile=icc, comment=b"x")
            out.append(buffer.getvalue())
    return out


def metadata_pngs(jpegs: list[bytes]) -> list[bytes]:
    """The JPEGs as PNGs carrying tEXt, zTXt, iTXt (XMP), eXIf, iCCP and tIME-free text chunks."""
    icc = (SAMPLES / "exiftool-formats" / "ICC_Profile.icc").read_bytes()
    out = []
    for data in jpegs:
        with Image.open(io.BytesIO(data)) as im:
            info = PngImagePlugin.PngInfo()
            info.add_text("Comment", "a comment")
            info.add_text("Author", "someone", zip=True)
            info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
            buffer = io.BytesIO()
            exif = im.info.get("exif", b"")
            im.convert("RGB").save(buffer, "PNG", compress_level=1, pnginfo=info, exif=exif, icc_profile=icc)
            out.append(buffer.getvalue())
    return out


def files_per_second(files: list[bytes], run: Callable[[bytes], object], warm: bool, seconds: float = 0) -> float:
    """Passes over ``files`` until ``seconds`` have gone (at least one pass), after an untimed pass if ``warm``."""
    if warm:
        for data in files:
            run(data)
    done, start = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < seconds:
        for data in files:
            run(data)
        done += len(files)
    return done / (time.perf_counter() - start)


def per_file_exiftool(executable: str, directory: Path) -> Callable[[bytes], object]:
    """``exiftool -all= -o out <file>`` in a new process; the inputs are written beforehand, untimed."""
    paths: dict[int, Path] = {}

    def run(data: bytes) -> object:
        source = paths[id(data)]
        target = source.with_name("out-" + source.name)
        done = subprocess.run([executable, "-q", "-q", "-all=", "-o", str(target), str(source)], check=False)
        target.unlink(missing_ok=True)
        return done

    def prepare(files: list[bytes]) -> None:
        for i, data in enumerate(files):
            paths[id(data)] = directory / f"{i}.{sniff(data).extension}"
            paths[id(data)].write_bytes(data)

    run.prepare = prepare
    return run


def measure(files: list[bytes], exiftool: ExifTool, per_file: Callable[[bytes], object]) -> tuple[float, float, float]:
    per_file.prepare(files)
    ours = files_per_second(files, lambda data: strip_metadata(data, KEEP_DEFAULT, exiftool), True, OURS_SECONDS)
    kept_open = files_per_second(files, lambda data: exiftool.write(data, sniff(data).extension, "-all="), True)
    one_process = files_per_second(files, per_file, False)
    return ours, kept_open, one_process


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    settings = Settings()
    with ExifTool(settings.exiftool_path, settings.exiftool_timeout) as exiftool, tempfile.TemporaryDirectory() as tmp:
        samples = spread(jpeg_samples(exiftool), count)
        large = large_jpegs(min(count, 6))
        sets = {
            "JPEG samples": samples,
            f"JPEG {EIGHT_MP[0]}x{EIGHT_MP[1]} (8.2 MP)": large,
            "PNG with metadata chunks": metadata_pngs(spread(samples, count // 2) + large[:2]),
        }
        print(f"exiftool {exiftool.version}, {os.cpu_count()} cores, keep={sorted(KEEP_DEFAULT)} for ours\n")
        print("| set | files | avg KB | ours files/s | kept-open `-all=` files/s | per-file `exiftool -all= -o` files/s"
              " | × kept-open | × per-file |")  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, files in sets.items():
            per_file = per_file_exiftool(settings.exiftool_path, Path(tmp))
            ours, kept_open, one_process = measure(files, exiftool, per_file)
            size = sum(map(len, files)) / len(files) / 1024
            print(f"| {name} | {len(files)} | {size:.0f} | {ours:.1f} | {kept_open:.1f} | {one_process:.1f} "
                  f"| {ours / kept_open:.1f}× | {ours / one_process:.1f}× |")  # fmt: skip


if __name__ == "__main__":
    main()
