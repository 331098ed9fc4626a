"""SeaweedFS's metadata store in the embedded stack: one LevelDB for a new stack (its listings age less,
compose/embedded.py says why), leveldb2 kept for a stack made before, whose objects' entries it holds."""

from __future__ import annotations

import uuid
from pathlib import Path

from adapters.objects import ObjectStore
from compose.embedded import EmbeddedStack, object_store_home
from isolated_stack import isolated_settings
from schemas.settings import Settings


def test_a_new_store_is_told_to_use_one_leveldb_and_one_made_before_keeps_its_leveldb2(tmp_path: Path) -> None:
    config = object_store_home(tmp_path) / ".seaweedfs" / "filer.toml"
    assert config.read_text() == f'[leveldb]\nenabled = true\ndir = "{tmp_path / "filerldb"}"\n'
    (tmp_path / "filerldb2").mkdir()
    assert object_store_home(tmp_path) == tmp_path / "home"
    assert not config.exists()


def test_a_store_made_before_keeps_its_leveldb2_and_its_objects(tmp_path: Path) -> None:
    settings = isolated_settings(Settings(link_secret=uuid.uuid4().hex), tmp_path, 1)
    before = EmbeddedStack(settings)
    # What this version's predecessors ran: SeaweedFS with no filer.toml to read, on its default leveldb2.
    before.object_store.env = {"HOME": str(tmp_path / "no-config")}
    before.start_object_store()
    try:
        ObjectStore(before.settings).put_bytes("originals/kept", b"made before", "text/plain")
    finally:
        before.object_store.stop()
    now = EmbeddedStack(settings)
    now.start_object_store()
    try:
        assert ObjectStore(now.settings).get_bytes("originals/kept") == b"made before"
    finally:
        now.object_store.stop()
    assert [p.name for p in (tmp_path / "seaweedfs").glob("filerldb*")] == ["filerldb2"]


def test_the_session_stack_keeps_its_metadata_in_one_leveldb(stack, settings) -> None:
    assert [p.name for p in (settings.data_dir / "seaweedfs").glob("filerldb*")] == ["filerldb"]
