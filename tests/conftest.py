"""Shared fixtures: one embedded moto per test session, fresh resource names per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra import kinesis_mock
from infra.apply import apply
from infra.local import embedded_stack
from infra.local_redis import local_redis_url
from infra.settings import Settings


@pytest.fixture(scope="session")
def stack_url() -> Iterator[str]:
    """The endpoint of moto running in this process on 127.0.0.1."""
    with embedded_stack() as url:
        yield url


@pytest.fixture
def settings(stack_url: str) -> Settings:
    """Settings naming resources no other test uses (tests share one moto, never its data)."""
    return Settings(endpoint_url=stack_url, redis_url=None).with_unique_names("test")


@pytest.fixture
def applied(settings: Settings) -> Settings:
    """``settings`` with every resource created on the embedded stack."""
    apply(settings)
    return settings


@pytest.fixture
def per_batch(applied: Settings) -> Settings:
    """``applied`` with the lander and the feature processor writing every batch before its
    checkpoint (no buffering), for tests of checkpoints that must move with each batch."""
    return applied.model_copy(update={"lake_buffer_bytes": 0, "feature_buffer_events": 0})


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for this session: the configured or local one, or a throwaway redis-server.

    Fails (does not skip) when none can be had: the Redis paths are part of what must pass.
    """
    with local_redis_url() as url:
        yield url


@pytest.fixture(scope="session")
def kinesis_mock_url() -> Iterator[str]:
    """kinesis-mock on 127.0.0.1 for this session (the faithful Kinesis: resharding, KCL).

    Fails (does not skip) when it cannot run: ``make test`` installs it.
    """
    reason = kinesis_mock.available()
    if reason is not None:
        pytest.fail(reason)
    with kinesis_mock.kinesis_mock() as url:
        yield url


@pytest.fixture
def faithful(settings: Settings, stack_url: str, kinesis_mock_url: str) -> Settings:
    """``settings`` on the faithful stack (kinesis-mock for Kinesis, moto for the rest), applied."""
    faithful_settings = settings.with_endpoint(stack_url, kinesis=kinesis_mock_url)
    apply(faithful_settings)
    return faithful_settings
