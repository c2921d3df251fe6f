"""The Docker deployment, checked without Docker: docker-compose.yml, Dockerfile, .dockerignore.

The compose file is parsed with PyYAML and held against the code it runs: every command must parse as
a real ``monitor`` subcommand with real options, every ``MONITOR_*`` variable must be a setting with
a valid value, and the workers together must consume every queue a task is routed to.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from typer.core import TyperGroup

from monitor.config import Settings, load_settings
from monitor.queue import QUEUE_CLASSIFY, TASK_QUEUES

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = {"migrate", "worker-fetch", "worker-classify", "beat"}
SERVER_SERVICES = {"postgres", "redis"}
ENV_PREFIX = "MONITOR_"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [
        " ".join(instruction.split())
        for instruction in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines()
        if instruction.strip()
    ]


class NotAMonitorCommand(ValueError):
    """The arguments are not something ``monitor`` accepts."""


def resolve_monitor_command(arguments: list[str]) -> None:
    """Parse ``monitor <arguments>`` as the real CLI would, without running anything.

    Raises ``NotAMonitorCommand`` for an unknown command or option, or a bad value.
    """
    from monitor.cli import app

    command = typer.main.get_command(app)
    context = typer.Context(command, info_name="monitor")
    path, remaining = ["monitor"], list(arguments)
    while isinstance(command, TyperGroup):
        if not remaining:
            raise NotAMonitorCommand(f"`{' '.join(path)}` needs a subcommand")
        name, *remaining = remaining
        subcommand = command.get_command(context, name)
        if subcommand is None:
            known = ", ".join(command.list_commands(context))
            raise NotAMonitorCommand(f"`{' '.join(path)}` has no command {name!r} ({known})")
        command, path = subcommand, [*path, name]
        context = typer.Context(command, info_name=name, parent=context)
    try:
        command.make_context(" ".join(path), list(remaining))
    except typer.TyperException as exc:
        raise NotAMonitorCommand(f"`{' '.join([*path, *remaining])}`: {exc.message}") from exc


def option_value(arguments: list[str], option: str) -> str:
    return arguments[arguments.index(option) + 1]


def test_the_deployment_has_the_servers_the_migration_the_workers_and_beat(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == APP_SERVICES | SERVER_SERVICES
    assert {name for name, service in services.items() if "build" in service} == APP_SERVICES


def test_the_servers_report_health_and_postgres_keeps_its_data(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    postgres, redis = services["postgres"], services["redis"]
    assert postgres["image"] == "postgres:16"
    assert redis["image"] == "redis:7"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ping" in redis["healthcheck"]["test"]
    volume, mount = postgres["volumes"][0].split(":")
    assert mount == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]


def test_the_migration_runs_once_after_postgres_is_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", sorted(APP_SERVICES - {"migrate"}))
def test_app_services_start_once_the_migration_completed(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    assert depends_on["redis"] == {"condition": "service_healthy"}


def test_the_classify_worker_requests_every_gpu(services: dict[str, dict[str, Any]]) -> None:
    devices = services["worker-classify"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert all("deploy" not in services[name] for name in set(services) - {"worker-classify"})


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_command_is_a_real_monitor_command(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    resolve_monitor_command(services[name]["command"])


def test_a_misspelt_command_or_option_is_caught() -> None:
    """The check above can fail: the real parser refuses what `monitor` would refuse."""
    for arguments in (
        ["wrker"],
        ["db", "upgrad"],
        ["db"],
        ["worker", "--queue", "fetch"],
        ["worker", "--concurrency", "0"],
    ):
        with pytest.raises(NotAMonitorCommand):
            resolve_monitor_command(arguments)


def test_the_workers_consume_every_queue_and_one_process_classifies(
    services: dict[str, dict[str, Any]],
) -> None:
    workers = {
        name: service["command"]
        for name, service in services.items()
        if service.get("command", [None])[0] == "worker"
    }
    assert set(workers) == {"worker-fetch", "worker-classify"}
    consumed = {
        name: set(option_value(command, "--queues").split(",")) for name, command in workers.items()
    }
    assert set().union(*consumed.values()) == set(TASK_QUEUES.values())
    assert consumed["worker-fetch"] == set(TASK_QUEUES.values()) - {QUEUE_CLASSIFY}
    assert consumed["worker-classify"] == {QUEUE_CLASSIFY}
    assert option_value(workers["worker-fetch"], "--concurrency") == "4"
    assert option_value(workers["worker-classify"], "--concurrency") == "1"
    beats = [name for name, service in services.items() if service.get("command") == ["beat"]]
    assert beats == ["beat"]


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_environment_names_real_settings_with_valid_values(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    environment = services[name]["environment"]
    assert environment, f"{name} has no environment"
    fields = {}
    for variable, value in environment.items():
        assert variable.startswith(ENV_PREFIX), variable
        field = variable.removeprefix(ENV_PREFIX).lower()
        assert field in Settings.model_fields, f"{variable} is not a setting"
        fields[field] = value
    settings = load_settings(**fields)
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.database == "postgresql+psycopg://monitor:monitor@postgres:5432/monitor"
    assert str(settings.default_model_dir) == "/models/current"


def test_the_app_reaches_the_servers_it_is_given(services: dict[str, dict[str, Any]]) -> None:
    environment = services["worker-fetch"]["environment"]
    database = urlsplit(environment["MONITOR_DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert database.hostname in services
    assert (database.username, database.password, database.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert urlsplit(environment["MONITOR_BROKER_URL"]).hostname in services


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_the_model_directory_is_mounted_read_only(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    mounts = [volume.split(":") for volume in services[name]["volumes"]]
    assert ["./models", "/models", "ro"] in mounts
    model_dir = Path(services[name]["environment"]["MONITOR_MODEL_DIR"])
    assert model_dir.is_relative_to("/models")


def test_the_image_installs_the_project_and_runs_monitor_as_a_user(dockerfile: list[str]) -> None:
    assert dockerfile[0] == "FROM python:3.11-slim"
    assert any(re.search(r"\bpip install \.(\s|$)", line) for line in dockerfile), dockerfile
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert [line for line in dockerfile if line.startswith("ENTRYPOINT")] == [
        'ENTRYPOINT ["monitor"]'
    ]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "monitor" in scripts


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context (the last matching pattern wins)."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/").removeprefix("**/")
        if fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], glob):
            excluded = not negated
    return excluded


def test_the_build_context_holds_what_pip_install_needs_and_little_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("pyproject.toml", "monitor", "workers", "migrations"):
        assert not dockerignored(needed, patterns), f"{needed} is left out of the build"
    for unwanted in (".venv", ".git", "tests", "models", "monitor/__pycache__"):
        assert dockerignored(unwanted, patterns), f"{unwanted} is sent to the build"
