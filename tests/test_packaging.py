"""The wheel a user installs: built from a copy of the checkout, installed into an empty venv and run
from elsewhere, so a module or data file the package list misses fails here, not on a user's machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from itertools import chain
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "media", "adapters", "ingest", "processors", "sink", "compose")
DATA = ("schemas/*.json", "adapters/*.pl", "ingest/openapi.yaml", "ingest/web/*", "compose/*.yml", "compose/*.json", "compose/Dockerfile")
# setuptools builds in the source tree, and the build/ it leaves keeps modules deleted since: the wheel is
# built from a copy without it (nor the venv, git's store, or what runs leave behind).
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", ".medialane", "build", "*.egg-info", "__pycache__",
    ".hypothesis", ".pytest_cache", ".schemathesis",
)  # fmt: skip


def run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "medialane"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    # The test extra installs the setuptools [build-system] asks for: the build needs no network.
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", out, source])  # fmt: skip
    [built] = out.glob("medialane-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--quiet", wheel])
    # The dependencies come from the project's venv. A .pth line naming a directory adds that directory
    # only: the project venv's own .pth files, its editable install of the checkout among them, stay unread.
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def outside_the_checkout(tmp_path: Path) -> dict:
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {"cwd": tmp_path, "env": env}


def test_the_wheel_holds_every_module_and_data_file(wheel):
    data = {pattern: list(ROOT.glob(pattern)) for pattern in DATA}
    assert all(data.values()), f"no file in the checkout matches {[p for p, found in data.items() if not found]}"
    files = [*(path for package in PACKAGES for path in (ROOT / package).rglob("*.py")), *chain(*data.values())]
    missing = {path.relative_to(ROOT).as_posix() for path in files} - set(zipfile.ZipFile(wheel).namelist())
    assert not missing, f"not in {wheel.name}: {sorted(missing)}"


def test_the_installed_command_runs_outside_the_checkout(venv, tmp_path):
    done = run([venv / "bin" / "medialane", "--help"], **outside_the_checkout(tmp_path))
    assert re.search(r"^ +up +start", done.stdout, re.MULTILINE), done.stdout
    # The entry points' imports, the stages' and adapters' among them, each module from the wheel.
    probe = ("import sys, compose.cli, compose.worker, ingest.app\n"
             f"print(*(m.__file__ for name, m in sys.modules.items() if name.partition('.')[0] in {PACKAGES}))")
    done = run([venv / "bin" / "python", "-c", probe], **outside_the_checkout(tmp_path))
    loaded = done.stdout.split()
    assert len(loaded) > len(PACKAGES)
    assert all(Path(path).is_relative_to(venv) for path in loaded), f"not from the installed wheel: {loaded}"
