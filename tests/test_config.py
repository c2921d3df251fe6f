"""Settings: a wrong name is an error naming the closest known one; the test suite's own pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import check_setting_names, load_settings
from monitor.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("MONITOR_ALLOW_PRIVATE_URLS", "MONITOR_ALLOW_PRIVATE_IMAGE_HOSTS"),
        ("MONITOR_BROKER", "MONITOR_BROKER_URL"),
        ("MONITOR_DATABASE", "MONITOR_DATABASE_URL"),
        ("MONITOR_FETCH_BATCH", "MONITOR_FETCH_BATCH_SIZE"),
    ],
)
def test_an_unknown_variable_names_the_closest_setting(name: str, closest: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_setting_names({name: "1", "PATH": "/bin"}, [])
    assert str(caught.value) == (
        f"unknown setting {name} in the environment; the closest known one is {closest}"
    )


def test_the_config_path_and_the_test_suites_variables_are_not_settings() -> None:
    check_setting_names(
        {
            "MONITOR_CONFIG": "/etc/monitor.toml",
            "MONITOR_HOME": "/var/lib/monitor",
            "MONITOR_REQUIRE_SERVICES": "1",
            "MONITOR_TEST_POSTGRES_URL": "postgresql+psycopg://postgres@db/test",
            "MONITOR_TEST_REDIS_URL": "redis://127.0.0.1:6379/15",
            "MONITOR_TEST_DATABASE": "monitor_test_a",
            "MONITORING": "unrelated",
        },
        ["database_url", "broker_url"],
    )


def test_an_unknown_config_file_key_stops_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('broker_url = "redis://r:6379/0"\nclasify_batch_size = 8\n')
    monkeypatch.setenv("MONITOR_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"unknown setting 'clasify_batch_size' in {config}; "
        "the closest known one is 'classify_batch_size'"
    )


def test_a_config_file_that_is_not_toml_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("broker_url = \n")
    monkeypatch.setenv("MONITOR_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match="cannot read the config file"):
        load_settings()


def test_known_names_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text("fetch_batch_size = 8\n")
    monkeypatch.setenv("MONITOR_CONFIG", str(config))
    monkeypatch.setenv("MONITOR_CLASSIFY_BATCH_SIZE", "4")
    settings = load_settings(home=tmp_path)
    assert (settings.fetch_batch_size, settings.classify_batch_size) == (8, 4)
