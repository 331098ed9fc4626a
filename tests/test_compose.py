"""The production compose stack, checked structurally (no Docker engine is needed to run these)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from compose.cli import main
from schemas.settings import Settings

COMPOSE_DIR = Path(__file__).resolve().parents[1] / "compose"
STACK = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
SERVICES = STACK["services"]
# Services running the medialane image are the ones that build it.
MEDIALANE_SERVICES = {name: service for name, service in SERVICES.items() if "build" in service}
# ${NAME}, ${NAME:-default}, ${NAME:?error}: compose fills these in from the shell or .env.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: INTERPOLATION.sub(lambda m: f"<{m[1]}>", str(value)) for key, value in env.items()}


def dockerfile_env() -> dict[str, str]:
    text = (COMPOSE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    pairs = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            pairs.update(re.findall(r"(\w+)=(\S+)", line))
    return pairs


def test_every_medialane_variable_is_a_setting():
    fields = {f"MEDIALANE_{name.upper()}" for name in Settings.model_fields}
    sources = {f"service {name}": environment(service) for name, service in SERVICES.items()}
    sources["Dockerfile"] = dockerfile_env()
    unknown = {
        where: sorted(key for key in env if key.startswith("MEDIALANE_") and key not in fields)
        for where, env in sources.items()
    }
    assert not {where: keys for where, keys in unknown.items() if keys}


@pytest.mark.parametrize("name", sorted(MEDIALANE_SERVICES))
def test_medialane_service_settings_validate(name, monkeypatch):
    for key, value in {**dockerfile_env(), **environment(MEDIALANE_SERVICES[name])}.items():
        if key.startswith("MEDIALANE_"):
            monkeypatch.setenv(key, value)
    Settings()


@pytest.mark.parametrize("name", sorted(MEDIALANE_SERVICES))
def test_command_is_a_medialane_subcommand(name, capsys):
    command = MEDIALANE_SERVICES[name]["command"]
    assert isinstance(command, list) and command, "the image's entrypoint is `medialane`; command is its arguments"
    # --help exits 0 for a known subcommand and 2 ("invalid choice") for an unknown one, running nothing.
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0, capsys.readouterr().err


def test_stack_has_the_pipeline_services():
    commands = {service["command"][0] for service in MEDIALANE_SERVICES.values()}
    assert commands == {"init", "worker", "ingest"}
    assert {"kafka", "minio"} <= SERVICES.keys()


def test_addresses_name_services_of_the_stack():
    env = environment(SERVICES["ingest"])
    worker_env = environment(SERVICES["worker"])
    for url in env["MEDIALANE_WORKER_URLS"].split(","):
        parts = urlsplit(url)
        assert parts.hostname == "worker"
        assert str(parts.port) == worker_env["MEDIALANE_WORKER_PORT"]
    assert env["MEDIALANE_KAFKA_BOOTSTRAP"].split(":")[0] in SERVICES
    assert env["MEDIALANE_S3_ENDPOINT"].split(":")[0] in SERVICES
    assert env["MEDIALANE_INGEST_HOST"] == "0.0.0.0"
    published = [str(port).rsplit(":", 1)[-1] for port in SERVICES["ingest"]["ports"]]
    assert env["MEDIALANE_INGEST_PORT"] in published


def test_every_service_uses_one_bucket():
    buckets = {environment(service)["MEDIALANE_S3_BUCKET"] for service in MEDIALANE_SERVICES.values()}
    assert len(buckets) == 1


def test_every_build_uses_the_dockerfile_here():
    for name, service in MEDIALANE_SERVICES.items():
        build = service["build"]
        assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == COMPOSE_DIR / "Dockerfile", name
