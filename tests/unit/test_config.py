"""load_config: defaults, then the environment, then overrides; derived defaults last."""

from __future__ import annotations

from pathlib import Path

from cms.config import load_config


def test_environment_is_converted_and_empty_means_default(tmp_path: Path) -> None:
    env = {"CMS_PORT": "9000", "CMS_SQL_ECHO": "yes", "CMS_PAGE_SIZE_MAX": "", "CMS_VAR_DIR": str(tmp_path)}
    config = load_config(environ=env)
    assert config["CMS_PORT"] == 9000
    assert config["CMS_SQL_ECHO"] is True
    assert config["CMS_PAGE_SIZE_MAX"] == 100


def test_overrides_win_and_only_non_empty_strings_of_known_settings_are_converted(tmp_path: Path) -> None:
    config = load_config(
        {"CMS_PORT": "7000", "CMS_SQL_ECHO": False, "CMS_LOG_LEVEL": "", "CUSTOM": "42"},
        environ={"CMS_PORT": "9000", "CMS_SQL_ECHO": "1", "CMS_VAR_DIR": str(tmp_path)},
    )
    assert config["CMS_PORT"] == 7000
    assert config["CMS_SQL_ECHO"] is False
    assert config["CMS_LOG_LEVEL"] == ""  # an empty override is kept as given
    assert config["CUSTOM"] == "42"


def test_derived_defaults(tmp_path: Path) -> None:
    config = load_config(environ={"CMS_VAR_DIR": str(tmp_path)})
    assert config["CMS_DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'cms.sqlite3'}"
    assert config["CMS_BROKER_URL"] == f"sqla+sqlite:///{tmp_path.resolve() / 'broker.sqlite3'}"
    assert len(config["CMS_SECRET_KEY"]) >= 32


def test_postgres_urls_use_psycopg_and_redis_broker_and_explicit_values_stay() -> None:
    env = {"CMS_DATABASE_URL": "postgres://db/cms", "CMS_SECRET_KEY": "s"}
    config = load_config(environ=env)
    assert config["CMS_DATABASE_URL"] == "postgresql+psycopg://db/cms"
    assert config["CMS_BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert config["CMS_SECRET_KEY"] == "s"
    assert load_config({"CMS_BROKER_URL": ""}, environ=env)["CMS_BROKER_URL"] == ""
