"""The kept-open exiftool the metadata stage reads with: hangs, crashes, broken installations, what its
reader prints, the processes it runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from adapters.exiftool import TCMALLOC, ExifTool, KeptOpen
from media.metadata import extract_metadata
from schemas.errors import CorruptMedia, ExtractFailed
from test_metadata import ALL_SAMPLES, EXIF_SAMPLES, EXIFTOOL, SECONDS_PER_FILE, exiftool, tag


def _trap_config(directory: Path, monkeypatch: pytest.MonkeyPatch, word: str, action: str) -> None:
    """An exiftool user config, loaded by the library at start, with a Composite tag that runs ``action``
    on a JPEG whose comment is ``word``."""
    (directory / ".ExifTool_config").write_text(
        "%Image::ExifTool::UserDefined = ('Image::ExifTool::Composite' => {\n"
        f"  Trap => {{ Require => 'Comment', ValueConv => '{action} if $val eq \"{word}\"; $val' }},\n"
        "});\n1;\n"
    )
    monkeypatch.setenv("EXIFTOOL_HOME", str(directory))


def _installation(directory: Path, library: str) -> str:
    """An exiftool script beside a ``lib/Image/ExifTool.pm`` whose body is ``library``; the reader loads it."""
    module = directory / "lib" / "Image" / "ExifTool.pm"
    module.parent.mkdir(parents=True)
    module.write_text(f"package Image::ExifTool;\n{library}\n1;\n")
    script = directory / "exiftool"
    script.write_text(f'#!/bin/sh\nexec "{EXIFTOOL}" "$@"\n')
    script.chmod(0o755)
    return str(script)


def _library() -> str:
    """Where the real Image/ExifTool.pm is, for a library that wraps it."""
    where = ["perl", "-MImage::ExifTool", "-e", "print $INC{'Image/ExifTool.pm'}"]
    return subprocess.run(where, capture_output=True, text=True, check=True).stdout


def _jpeg_with_comment(comment: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", comment=comment.encode())
    return out.getvalue()


def test_a_read_left_by_its_block_does_not_reach_the_next_read(exiftool: ExifTool) -> None:
    # The block runs while exiftool parses; when it fails (Pillow refusing the file), exiftool's answer
    # must still be taken off the pipe, or the next file would get this one's tags.
    with pytest.raises(CorruptMedia):
        with exiftool.reading(_jpeg_with_comment("first"), "jpg"):
            raise CorruptMedia("refused while exiftool reads")
    assert exiftool.extract(_jpeg_with_comment("second"), "jpg")["File:Comment"]["val"] == "second"


def test_reads_and_writes_from_many_threads_at_once_each_get_their_own_answer(exiftool: ExifTool) -> None:
    # A worker runs the jobs of a batch together (processors/fetch.py), each op in a thread of its own.
    words = [f"comment-{i}" for i in range(24)]

    def read(word: str) -> str:
        with exiftool.reading(_jpeg_with_comment(word), "jpg") as tags:
            time.sleep(0.001)
            return tags()["File:Comment"]["val"]

    def rewrite(word: str) -> str:
        written = exiftool.write(_jpeg_with_comment("old"), "jpg", f"-Comment={word}")
        return exiftool.extract(written, "jpg")["File:Comment"]["val"]

    with ThreadPoolExecutor(8) as threads:
        read_back = list(threads.map(read, words))
        rewritten = list(threads.map(rewrite, words))
    assert read_back == words
    assert rewritten == words


def test_hung_exiftool_is_killed_and_the_next_call_works(tmp_path: Path, monkeypatch) -> None:
    _trap_config(tmp_path, monkeypatch, "hang", "sleep 60")
    with ExifTool(EXIFTOOL, timeout=2.0) as tool:
        start = time.monotonic()
        with pytest.raises(ExtractFailed) as err:
            extract_metadata(_jpeg_with_comment("hang"), "hang.jpg", tool)
        assert err.value.code == "extract_timeout"
        assert time.monotonic() - start < 10
        doc = extract_metadata(_jpeg_with_comment("fine"), "fine.jpg", tool)
        assert tag(doc, "composite", "Composite", "Trap")["value"] == "fine"


def test_crashed_exiftool_is_restarted(tmp_path: Path, monkeypatch) -> None:
    _trap_config(tmp_path, monkeypatch, "crash", "exit 7")
    with ExifTool(EXIFTOOL, timeout=10.0) as tool:
        with pytest.raises(ExtractFailed) as err:
            extract_metadata(_jpeg_with_comment("crash"), "crash.jpg", tool)
        assert err.value.code == "extract_failed"
        assert extract_metadata(_jpeg_with_comment("fine"), "fine.jpg", tool)["image"]["width"] == 8


def test_exiftool_hanging_at_start_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ExtractFailed) as err:
        ExifTool(_installation(tmp_path, "BEGIN { sleep 60 }"), timeout=1.0)
    assert err.value.code == "extract_timeout"
    assert time.monotonic() - start < 10


def test_exiftool_dying_at_start_fails(tmp_path: Path) -> None:
    with pytest.raises(ExtractFailed) as err:
        ExifTool(_installation(tmp_path, "BEGIN { exit 3 }"), timeout=5.0)
    assert err.value.code == "extract_failed"


def test_missing_exiftool_fails(tmp_path: Path) -> None:
    with pytest.raises(ExtractFailed, match="cannot start exiftool"):
        ExifTool(str(tmp_path / "no-such-exiftool"), timeout=5.0)


def test_old_exiftool_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExtractFailed, match=r"needs >= 12\.38"):
        ExifTool(_installation(tmp_path, f"require '{_library()}'; our $VERSION = '11.00';"), timeout=5.0)


def test_reader_prints_what_the_exiftool_tool_prints() -> None:
    """The reader's JSON equals ``exiftool -json -G0:1 -long -struct -D`` on every sample (less "desc",
    "lang", the ids of other tags than EXIF's, our temp file's System tags and SourceFile), so the
    document is exiftool's own output.

    A fresh reader reads the samples twice: the first time it meets a tag, exiftool converts its values
    with the tag's own strings; after that, with the subs the reader compiled from them."""
    samples = [path for path in ALL_SAMPLES if path.name not in NONDETERMINISTIC]
    expected = {}
    # One tool kept open answers as one run per file does, in a seventh of the time.
    tool = KeptOpen([EXIFTOOL, "-stay_open", "True", "-@", "-"], SECONDS_PER_FILE)
    try:
        for path in samples:
            printed = tool.execute("-json", "-G0:1", "-long", "-struct", "-D", str(path))
            expected[path] = _comparable(json.loads(printed)[0]) if printed.strip() else None
    finally:
        tool.close()
    different = []
    with ExifTool(EXIFTOOL, SECONDS_PER_FILE) as reader:
        for path in [*samples, *samples]:
            try:
                read = _comparable(reader.extract(path.read_bytes(), path.suffix.lstrip(".").lower() or "bin"))
            except (ExtractFailed, ValueError):
                read = None
            if read != expected[path]:
                different.append(path.name)
    assert different == []


def test_large_files_are_read_by_name_with_the_same_answer(exiftool: ExifTool, tmp_path: Path) -> None:
    """Files over 16 MiB are read by name rather than from memory (adapters/exiftool_reader.pl)."""
    path = tmp_path / "large.jpg"
    path.write_bytes((EXIF_SAMPLES / "jpg" / "Canon_40D.jpg").read_bytes() + bytes(17 * 1024 * 1024))
    printed = subprocess.run(
        [EXIFTOOL, "-json", "-G0:1", "-long", "-struct", "-D", str(path)], capture_output=True, timeout=60
    ).stdout
    read = exiftool.extract(path.read_bytes(), "jpg")
    assert _comparable(read) == _comparable(json.loads(printed)[0])
    assert read["EXIF:IFD0:Model"]["val"] == "Canon EOS 40D"


# exiftool itself prints these differently from run to run (which of a thousand duplicate track points
# fills a structure).
NONDETERMINISTIC = {"Geotag.gpx", "Geotag.kml"}


def _comparable(document: dict) -> dict:
    return {
        # -D also adds "lang" to language variants (ProfileDescriptionML-de-DE): the key says it already.
        key: {k: v for k, v in tag.items() if k in ("val", "num") or k == "id" and key.startswith("EXIF:")}
        for key, tag in document.items()
        if key != "SourceFile" and not key.startswith("File:System:")
    }


@pytest.mark.skipif(TCMALLOC is None, reason="libtcmalloc-minimal4 is not installed (`make setup` installs it)")
def test_exiftool_processes_run_with_tcmalloc() -> None:
    others = _children()
    with ExifTool(EXIFTOOL, SECONDS_PER_FILE) as tool:
        tool.write((EXIF_SAMPLES / "jpg" / "Canon_40D.jpg").read_bytes(), "jpg", "-all=")
        reader_and_writer = _children() - others
        assert len(reader_and_writer) == 2
        for pid in reader_and_writer:
            assert "libtcmalloc_minimal" in Path(f"/proc/{pid}/maps").read_text()


def _children() -> set[int]:
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == os.getpid():
            pids.add(int(stat.parent.name))
    return pids


def test_version_is_checked(exiftool: ExifTool) -> None:
    major, minor = map(int, exiftool.version.split("."))
    assert (major, minor) >= (12, 38)


def test_file_names_never_reach_exiftool(exiftool: ExifTool) -> None:
    hostile = "-if\n$FileName ; rm -rf / `id`.jpg"
    doc = extract_metadata((EXIF_SAMPLES / "jpg" / "Canon_40D.jpg").read_bytes(), hostile, exiftool)
    assert doc["file"]["name"] == hostile
    assert tag(doc, "exif", "IFD0", "Make")["value"] == "Canon"
