"""The compose file and the Dockerfile cannot run here (no Docker): check them statically."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from infra.settings import AWS_STANDARD_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.localstack.yml"
DOCKERFILE = ROOT / "Dockerfile"
STREAMREC_SERVICES = ("apply", "consumer", "worker")  # built from the Dockerfile


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _streamrec_variables() -> set[str]:
    return {f"STREAMREC_{name.upper()}" for name in Settings.model_fields}


def test_compose_parses_and_names_the_services() -> None:
    services = _compose()["services"]
    assert {"localstack", "moto", "redis", *STREAMREC_SERVICES} <= set(services)
    localstack = services["localstack"]["environment"]["SERVICES"].split(",")
    assert set(localstack) == {"kinesis", "dynamodb", "s3"}
    commands = {name: services[name]["command"] for name in STREAMREC_SERVICES}
    assert commands == {"apply": ["infra", "apply"], "consumer": ["consume"], "worker": ["serve"]}
    for name in STREAMREC_SERVICES:
        assert services[name]["build"] == ".", f"{name} is not built from the Dockerfile"


def test_every_published_port_is_bound_to_loopback() -> None:
    published = [
        (name, port) for name, s in _compose()["services"].items() for port in s.get("ports", [])
    ]
    assert len(published) >= 4
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_services_have_health_checks_and_start_in_order() -> None:
    services = _compose()["services"]
    for name in ("localstack", "moto", "redis", "worker"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "/healthz" in " ".join(services["worker"]["healthcheck"]["test"])
    for name in ("consumer", "worker"):
        depends = services[name]["depends_on"]
        assert depends["apply"] == {"condition": "service_completed_successfully"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
    assert services["apply"]["depends_on"]["moto"] == {"condition": "service_healthy"}


def test_every_variable_it_sets_for_streamrec_is_one_streamrec_reads() -> None:
    for name in STREAMREC_SERVICES:
        environment = _compose()["services"][name]["environment"]
        assert environment, f"the {name} service sets no environment"
        unknown = set(environment) - _streamrec_variables() - AWS_STANDARD_VARIABLES
        assert not unknown, f"{name}: variables streamrec does not read: {sorted(unknown)}"


def test_endpoints_cover_every_service_streamrec_calls() -> None:
    environment = _compose()["services"]["worker"]["environment"]
    assert environment["AWS_ENDPOINT_URL"].startswith("http://localstack:")  # kinesis, ddb, s3
    assert environment["AWS_ENDPOINT_URL_GLUE"].startswith("http://moto:")
    assert environment["STREAMREC_REDIS_URL"].startswith("redis://redis:")


def test_settings_pick_the_compose_variables_up(monkeypatch) -> None:
    environment = _compose()["services"]["worker"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.redis_url == environment["STREAMREC_REDIS_URL"]
    assert settings.api_host == environment["STREAMREC_API_HOST"]


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages at FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    stages: list[list[str]] = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_on_a_slim_base() -> None:
    stages = _stages()
    assert len(stages) >= 2
    arg = re.search(r"^ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text(), re.M)
    assert arg and re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", arg.group(1))
    final = stages[-1]
    assert any(line.startswith("COPY --from=build ") for line in final)
    # nothing installed or compiled in the final stage: it only copies the build's virtualenv
    assert not any(re.search(r"pip install|apt-get|gcc|build-essential", line) for line in final)


def test_dockerfile_runs_streamrec_as_a_non_root_user() -> None:
    final = _stages()[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    entrypoint = next(line for line in final if line.startswith("ENTRYPOINT"))
    assert entrypoint == 'ENTRYPOINT ["streamrec"]'
    env = " ".join(line for line in final if line.startswith("ENV "))
    names = set(re.findall(r"\b(STREAMREC_\w+)=", env))
    assert names <= _streamrec_variables(), names - _streamrec_variables()


def test_dockerfile_copies_every_package_the_distribution_has() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    build = " ".join(_stages()[0])
    assert len(packages) == 6
    for package in packages:
        assert f"COPY {package}/ {package}/" in build, package
