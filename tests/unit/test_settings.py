"""Settings come from STREAMREC_ variables; endpoints from the standard AWS variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.clients import async_client, client
from infra.settings import Settings


def test_settings_read_the_streamrec_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_STREAM_NAME", "clicks")
    monkeypatch.setenv("STREAMREC_STREAM_SHARDS", "4")
    settings = Settings()
    assert (settings.stream_name, settings.stream_shards) == ("clicks", 4)


def test_settings_are_frozen_and_validated() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.stream_name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="stream_shards"):
        Settings(stream_shards=0)


def test_clients_follow_the_standard_endpoint_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_KINESIS", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", "http://127.0.0.1:5999")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    settings = Settings()
    assert client("glue", settings).meta.endpoint_url == "http://127.0.0.1:5999"
    assert client("kinesis", settings).meta.endpoint_url.startswith("https://kinesis.")


def test_the_embedded_endpoint_overrides_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    settings = Settings().with_endpoint("http://127.0.0.1:5998")
    for service in ("kinesis", "dynamodb", "s3", "glue"):
        assert client(service, settings).meta.endpoint_url == "http://127.0.0.1:5998"


def test_a_service_endpoint_overrides_the_common_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    settings = Settings().with_endpoint("http://127.0.0.1:5998", kinesis="http://127.0.0.1:5996")
    assert client("kinesis", settings).meta.endpoint_url == "http://127.0.0.1:5996"
    assert client("dynamodb", settings).meta.endpoint_url == "http://127.0.0.1:5998"
    monkeypatch.setenv("STREAMREC_SERVICE_ENDPOINTS", '{"kinesis": "http://127.0.0.1:5995"}')
    assert Settings().endpoint_for("kinesis") == "http://127.0.0.1:5995"
    assert Settings().endpoint_for("s3") is None


async def test_async_clients_use_the_same_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:5997")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    async with async_client("kinesis", Settings()) as kinesis:
        assert kinesis.meta.endpoint_url == "http://127.0.0.1:5997"


def test_ingest_api_keys_are_comma_separated_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().ingest_keys == frozenset()
    monkeypatch.setenv("STREAMREC_INGEST_API_KEYS", " key-one, key-two ,, ")
    settings = Settings()
    assert settings.ingest_keys == frozenset({"key-one", "key-two"})
    assert "key-one" not in repr(settings) and "key-one" not in str(settings.model_dump())
