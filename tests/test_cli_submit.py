"""The people's commands against the session's stack: ``submit`` on a folder tree (with a corrupt file, an
empty one, a duplicate and a hidden one), its progress in a pseudo-terminal, then ``jobs``, ``job``,
``similar`` and ``uniquify`` on what it made.

The command runs as the installed console script from an empty directory, with only ``MEDIALANE_URL`` and
``MEDIALANE_KEY``; its key is its own, so the images other tests index never show in its searches.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import shutil
import struct
import termios
from pathlib import Path

import pytest

from adapters.apikeys import KeyStore
from adapters.objects import ObjectStore
from conftest import SAMPLES
from test_cli import clean_env, medialane, MEDIALANE

JPG = SAMPLES / "exif-samples" / "jpg"


@pytest.fixture(scope="module")
def cli_env(ingest, settings) -> dict[str, str]:
    key = KeyStore(ObjectStore(settings)).create("cli tests")[0]
    return clean_env(MEDIALANE_URL=str(ingest.make_url("")), MEDIALANE_KEY=key)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """photos/ with subfolders: two cameras' JPEGs, the first again under another name, a truncated JPEG,
    an empty file, and a hidden file the command skips."""
    root = tmp_path_factory.mktemp("tree") / "photos"
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    shutil.copy(JPG / "Canon_40D.jpg", root / "a" / "canon.jpg")
    shutil.copy(JPG / "Nikon_D70.jpg", root / "a" / "b" / "nikon.jpg")
    shutil.copy(JPG / "Canon_40D.jpg", root / "c" / "canon copy.jpg")
    (root / "c" / "broken.jpg").write_bytes((JPG / "Pentax_K10D.jpg").read_bytes()[:3000])
    (root / "empty.jpg").write_bytes(b"")
    (root / ".thumbs.db").write_bytes(b"not a photo")
    return root


@pytest.fixture(scope="module")
async def submitted(tree, cli_env, tmp_path_factory) -> tuple[Path, int, str, dict[str, dict]]:
    cwd = tmp_path_factory.mktemp("run")
    code, out, err = await medialane("submit", str(tree), "--ops", "metadata,phash,strip", "--out", "results",
                                     cwd=cwd, env=cli_env | {"COLUMNS": "200"})  # fmt: skip
    assert "Traceback" not in err, err
    lines = [json.loads(line) for line in (cwd / "results" / "summary.jsonl").read_text().splitlines()]
    return cwd / "results", code, out, {line["path"]: line for line in lines}


async def test_submit_mirrors_the_tree_and_summarises_each_file(submitted, tree):
    out, code, stdout, summary = submitted
    assert code == 1, stdout
    assert sorted(summary) == ["photos/a/b/nikon.jpg", "photos/a/canon.jpg", "photos/c/broken.jpg",
                               "photos/c/canon copy.jpg", "photos/empty.jpg"]  # fmt: skip
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(["summary.jsonl", *(path for line in summary.values() for path in line["outputs"])])
    for name in ("photos/a/canon.jpg", "photos/a/b/nikon.jpg", "photos/c/canon copy.jpg"):
        line = summary[name]
        assert line["status"] == "completed" and line["error"] is None, line
        assert line["ops"] == {op: {"status": "completed", "error": None} for op in ("metadata", "phash", "strip")}
        assert re.fullmatch(r"[0-9a-f]{16}", line["phash"])
        assert sorted(line["outputs"]) == [f"{name}.metadata.json", name.replace(".jpg", ".stripped.jpg")]
    canon = json.loads((out / "photos/a/canon.jpg.metadata.json").read_text())
    assert canon["exif"]["IFD0"]["Make"]["value"] == "Canon" and canon["file"]["name"] == "canon.jpg"
    stripped = (out / "photos/a/canon.stripped.jpg").read_bytes()
    assert stripped[:2] == b"\xff\xd8" and b"Canon" in (tree / "a/canon.jpg").read_bytes() and b"Canon" not in stripped
    # The duplicate is processed like any file, and hashes alike.
    assert summary["photos/c/canon copy.jpg"]["phash"] == summary["photos/a/canon.jpg"]["phash"]
    assert summary["photos/c/canon copy.jpg"]["job_id"] != summary["photos/a/canon.jpg"]["job_id"]
    empty = summary["photos/empty.jpg"]
    assert (empty["status"], empty["error"], empty["job_id"]) == ("refused", "empty_file", None)
    broken = summary["photos/c/broken.jpg"]
    # Refused at upload, or accepted and failed by every op (partial when a reader degrades): never completed.
    assert broken["status"] in ("refused", "failed", "partial") and broken["error"] == "corrupt_media", broken
    assert broken["ops"]["strip"] == {"status": "failed", "error": "corrupt_media"} or broken["status"] == "refused"
    assert "photos/c/broken.stripped.jpg" not in written
    assert "not completed" in stdout and "photos/c/broken.jpg" in stdout and "empty_file" in stdout


async def test_submit_exits_0_when_every_file_completes(tree, cli_env, tmp_path):
    code, out, err = await medialane("submit", str(tree / "a" / "b"), str(tree / "c" / "canon copy.jpg"),
                                     "--out", "results", cwd=tmp_path, env=cli_env)  # fmt: skip
    assert code == 0, out + err
    assert sorted(p.relative_to(tmp_path / "results").as_posix() for p in (tmp_path / "results").rglob("*.json")) == [
        "b/nikon.jpg.metadata.json", "canon copy.jpg.metadata.json"]  # fmt: skip


def read_terminal(master: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def test_submit_shows_a_live_progress_bar_in_a_terminal(tree, cli_env, tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = await asyncio.create_subprocess_exec(
        MEDIALANE, "submit", str(tree / "a"), "--out", "results", "--concurrency", "1",
        cwd=tmp_path, env=cli_env | {"TERM": "xterm-256color"}, stdin=slave, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    try:
        screen = await asyncio.to_thread(read_terminal, master)
    finally:
        os.close(master)
    assert await process.wait() == 0, screen.decode(errors="replace")
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", screen).decode(errors="replace")
    # Redrawn in place (cursor controls), from none done to all done, with the rate and the time left.
    assert b"\x1b[" in screen
    assert "0/2" in text and "2/2" in text, text
    assert "files/s" in text and "left" in text


async def test_jobs_job_and_similar_show_what_submit_made(submitted, cli_env, tmp_path):
    out, _, _, summary = submitted
    canon, copy = summary["photos/a/canon.jpg"], summary["photos/c/canon copy.jpg"]
    code, stdout, err = await medialane("job", canon["job_id"], cwd=tmp_path, env=cli_env)
    assert code == 0, err
    document = json.loads(stdout)
    assert (document["job_id"], document["status"]) == (canon["job_id"], "completed")
    assert document["result"]["phash"]["phash"] == canon["phash"]
    code, stdout, err = await medialane("jobs", "--limit", "100", cwd=tmp_path, env=cli_env | {"COLUMNS": "200"})
    assert code == 0, err
    assert all(line["job_id"] in stdout for line in summary.values() if line["job_id"])
    for query in (str(out.parent / "results" / "photos/a/canon.stripped.jpg"), canon["phash"]):
        code, stdout, err = await medialane("similar", query, "--max-distance", "0", cwd=tmp_path,
                                            env=cli_env | {"COLUMNS": "200"})  # fmt: skip
        assert code == 0, err
        assert canon["job_id"] in stdout and copy["job_id"] in stdout, stdout
    code, _, err = await medialane("similar", "not-a-hash", cwd=tmp_path, env=cli_env)
    assert code == 2 and "neither a file nor a pHash" in err
    code, _, err = await medialane("job", "00000000-0000-4000-8000-000000000000", cwd=tmp_path, env=cli_env)
    assert code == 1 and "job_not_found" in err and "Traceback" not in err


async def test_uniquify_saves_the_copies_and_their_manifest(cli_env, tmp_path):
    code, stdout, err = await medialane("uniquify", str(JPG / "Canon_40D.jpg"), "--count", "3", "--seed", "7",
                                        "--out", "copies", cwd=tmp_path, env=cli_env)  # fmt: skip
    assert code == 0, stdout + err
    manifest = json.loads((tmp_path / "copies" / "manifest.json").read_text())
    assert manifest["seed"] == 7 and len(manifest["copies"]) == 3
    copies = sorted(p.name for p in (tmp_path / "copies").glob("*.jpg"))
    assert copies == sorted(Path(entry["path"]).name for entry in manifest["copies"])
    assert all((tmp_path / "copies" / name).read_bytes()[:2] == b"\xff\xd8" for name in copies)
    assert "3 copies" in stdout
