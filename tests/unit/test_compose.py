"""The compose file cannot run here (no Docker): check it parses and speaks our config."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra.settings import AWS_STANDARD_VARIABLES, Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.localstack.yml"


def _streamrec_variables() -> set[str]:
    return {f"STREAMREC_{name.upper()}" for name in Settings.model_fields}


def test_compose_parses_and_names_the_services() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    assert {"localstack", "moto", "redis", "streamrec"} <= set(compose["services"])
    services = compose["services"]["localstack"]["environment"]["SERVICES"].split(",")
    assert set(services) == {"kinesis", "dynamodb", "s3"}


def test_every_variable_it_sets_for_streamrec_is_one_streamrec_reads() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    environment = compose["services"]["streamrec"]["environment"]
    assert environment, "the streamrec service sets no environment"
    unknown = set(environment) - _streamrec_variables() - AWS_STANDARD_VARIABLES
    assert not unknown, f"variables streamrec does not read: {sorted(unknown)}"


def test_endpoints_cover_every_service_streamrec_calls() -> None:
    environment = yaml.safe_load(COMPOSE.read_text())["services"]["streamrec"]["environment"]
    assert "AWS_ENDPOINT_URL" in environment  # kinesis, dynamodb, s3 on LocalStack
    assert environment["AWS_ENDPOINT_URL_GLUE"].startswith("http://moto:")
    assert environment["STREAMREC_REDIS_URL"].startswith("redis://redis:")


def test_settings_pick_the_compose_variables_up(monkeypatch) -> None:
    environment = yaml.safe_load(COMPOSE.read_text())["services"]["streamrec"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.redis_url == environment["STREAMREC_REDIS_URL"]
    assert settings.api_host == environment["STREAMREC_API_HOST"]
