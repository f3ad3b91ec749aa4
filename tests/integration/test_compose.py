"""docker-compose.yml and the Dockerfile describe this project: the compose file is valid against the
Compose specification's JSON schema, and every command, route, module and variable it names exists.

Docker does not run on these machines; this is what can be checked without it.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from jsonschema import Draft7Validator

from digest.cli import app
from digest.config import Settings
from digest.web.ops import router

REPO = Path(__file__).resolve().parents[2]
SCHEMA_NAME = Path("shared") / "schemas" / "compose-spec.json"
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = sorted(name for name, svc in SERVICES.items() if "build" in svc)  # run the digest image

CLI: Any = typer.main.get_command(app)  # the click group behind the typer app: its commands and options


def _schema() -> dict[str, Any]:
    """The schema lives beside the repository (``../shared/schemas``, as CI lays it out); a worktree
    one level deeper finds it one level further up."""
    for base in REPO.parents:
        if (base / SCHEMA_NAME).is_file():
            return json.loads((base / SCHEMA_NAME).read_text())
    pytest.fail(
        f"the Compose JSON schema is missing: expected {REPO.parent / SCHEMA_NAME} "
        "(a copy of shared/ beside the repository)"
    )


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = [f"{e.json_path}: {e.message}" for e in Draft7Validator(_schema()).iter_errors(COMPOSE)]
    assert errors == []


def test_the_stack_has_every_role() -> None:
    assert {"postgres", "redis", "mailpit", "init", "web", "worker", "beat"} <= set(SERVICES)
    assert set(OURS) == {"init", "web", "worker", "beat"}
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    assert isinstance(command, list), f"{service}: write the command as a list (no shell parsing)"
    return [str(part) for part in command]


@pytest.mark.parametrize("service", OURS)
def test_every_service_command_is_a_digest_command_with_valid_options(service: str) -> None:
    name, *args = _command(service)
    assert name in CLI.commands, f"{service}: `digest {name}` is not a command of the digest CLI"
    command = CLI.commands[name]
    with command.make_context(f"digest {name}", list(args)):  # raises on unknown options or bad values
        pass


def test_init_runs_once_and_everything_of_ours_waits_for_it() -> None:
    assert _command("init") == ["init"]
    assert SERVICES["init"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["init"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy", name


def test_workers_scale_and_beat_is_the_single_scheduler() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale worker=N` needs both absent
    assert _command("worker")[0] == "worker" and _command("beat") == ["beat"]
    assert "container_name" not in SERVICES["beat"]


def test_health_checks_use_what_the_project_provides() -> None:
    for name in ("postgres", "redis", "mailpit", "web", "worker"):
        assert SERVICES[name]["healthcheck"]["test"], name
    web_check = " ".join(SERVICES["web"]["healthcheck"]["test"])
    paths = {route.path for route in router.routes}  # type: ignore[attr-defined]
    assert "/healthz" in web_check and "/healthz" in paths
    worker_check = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    assert "celery -A workers inspect ping" in worker_check
    import workers

    assert workers.celery.main == "digest"  # what `celery -A workers` finds


def test_environment_names_only_real_settings() -> None:
    known = {f"DIGEST_{name.upper()}" for name in Settings.model_fields} | {"DIGEST_FROM"}
    environment = COMPOSE["x-digest"]["environment"]
    assert set(environment) - known == set()
    assert environment["DIGEST_SMTP_URL"].endswith("smtp://mailpit:1025}")
    assert {"DIGEST_DATABASE_URL", "DIGEST_BROKER_URL", "DIGEST_BASE_URL", "DIGEST_SECRET_KEY"} <= set(environment)
    assert COMPOSE["x-digest"]["env_file"] == [{"path": ".env", "required": True}]
    example = (REPO / ".env.example").read_text()
    for variable in re.findall(r"\$\{(\w+):\?", (REPO / "docker-compose.yml").read_text()):
        assert re.search(rf"^{variable}=", example, re.MULTILINE), f".env.example does not list {variable}"


def test_dockerfile_builds_a_non_root_digest_image() -> None:
    lines = [
        line.strip()
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim AS build"
    runtime = lines[lines.index("FROM python:3.11-slim") :]
    user = next(line.split()[1] for line in runtime if line.startswith("USER "))
    assert user not in ("root", "0")
    assert 'ENTRYPOINT ["digest"]' in lines
    assert "digest" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    # the runtime stage installs the locked dependencies by hash, then the wheel without resolving more
    assert "RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock" in runtime
    assert any(line.startswith("RUN pip install --no-deps /tmp/dist/digest-") for line in runtime)
    assert not any(" -e " in line for line in runtime)
    assert (REPO / "requirements.lock").exists()
