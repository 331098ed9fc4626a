"""Schemas on disk match the code, every published message validates, settings are documented."""

from __future__ import annotations

import json

import pytest

from schemas.export import schema_files
from schemas.settings import Settings


def test_exported_schemas_are_current():
    for path, schema in schema_files().items():
        assert path.exists(), f"{path.name} missing: run `medialane schemas`"
        assert json.loads(path.read_text()) == schema, f"{path.name} is stale: run `medialane schemas`"


def test_every_setting_has_a_default_and_a_description():
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert not field.is_required(), name


def test_settings_come_from_medialane_environment_variables(monkeypatch):
    monkeypatch.setenv("MEDIALANE_TOPIC_PARTITIONS", "7")
    monkeypatch.setenv("MEDIALANE_WORKER_URLS", "http://a:1, http://b:2")
    settings = Settings()
    assert settings.topic_partitions == 7
    assert settings.worker_urls == ("http://a:1", "http://b:2")
    with pytest.raises(ValueError):
        settings.topic_partitions = 3
    assert Settings(**{k.removeprefix("MEDIALANE_").lower(): v for k, v in settings.env().items()}) == settings
