"""The Docker image installs from requirements.lock: the lock must still satisfy pyproject.toml, pin
every package with hashes, and the Dockerfile must use it (there is no Docker engine to build with)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_lock_satisfies_every_runtime_dependency() -> None:
    """If this fails after a change to pyproject.toml, run `make lock` and commit requirements.lock."""
    pins = locked()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for raw in dependencies:
        requirement = Requirement(raw)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name][0]}, outside {requirement.specifier}; `make lock`"
        )
    assert all(hashes > 0 for _, hashes in pins.values())


def test_dockerfile_uses_the_lock_a_pinned_base_and_the_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert bases and all(
        re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", b) for b in bases
    )
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    assert 'CMD ["python", "-m", "bot", "healthcheck"]' in dockerfile
    assert re.search(r'^CMD \["python", "-m", "bot"\]$', dockerfile, re.MULTILINE)
    assert "COPY docker/image.env /app/.env" in dockerfile  # its settings, under the container's
    assert "METRICS_PORT=9100" in dockerfile
    assert "METRICS_PORT=9100" in (ROOT / "docker/image.env").read_text()


def dry_run(target: str, tmp_path: Path) -> list[str]:
    """The commands `make TARGET` would run on a fresh virtualenv (make -n: nothing is executed)."""
    result = subprocess.run(
        # --no-print-directory: under `make test` this make is a sub-make, which would otherwise print
        # "make[1]: Entering directory …" lines among the commands.
        ["make", "-n", "--no-print-directory", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def test_make_run_installs_the_lock_then_the_bot_without_dependencies(tmp_path: Path) -> None:
    """Issue 19, item 14: `make run` runs on the image's versions, not on pyproject's ranges."""
    commands = dry_run("run", tmp_path)
    installs = [c for c in commands if "pip install" in c and "--upgrade pip" not in c]
    assert len(installs) == 2, commands
    assert "--require-hashes -r requirements.lock" in installs[0]
    assert "--no-deps" in installs[1] and "[dev]" not in installs[1]
    assert commands[-1].endswith("-m bot")


def test_make_test_adds_the_dev_tools_held_to_the_lock(tmp_path: Path) -> None:
    commands = dry_run("test", tmp_path)
    installs = [c for c in commands if "pip install" in c and "--upgrade pip" not in c]
    assert "--require-hashes -r requirements.lock" in installs[0]
    assert "-c " in installs[-1] and "[dev]" in installs[-1], installs
    assert any("pytest" in c for c in commands)


def test_this_environment_runs_the_locked_versions() -> None:
    """The suite runs where `make test` installed it: every locked package at the locked version
    (rebuild .venv with `make lint` if this fails after an upgrade by hand)."""
    from importlib import metadata

    wrong = {}
    for name, (version, _) in locked().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue  # a platform-only dependency (e.g. of Windows)
        if installed != version:
            wrong[name] = f"{installed} installed, {version} locked"
    assert wrong == {}
