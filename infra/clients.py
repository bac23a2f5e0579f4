"""The one factory for AWS clients, sync (boto3) and async (aiobotocore).

Nothing else in streamrec calls ``boto3.client`` or creates an aiobotocore session: components
take a client as an argument, and the composition root makes it here.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import boto3
from aiobotocore.session import get_session
from botocore.config import Config

from infra.settings import Settings

# Standard retry mode: exponential backoff with jitter on throttling and 5xx, as AWS recommends.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)


def _kwargs(service: str, settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"region_name": settings.region, "config": _CONFIG}
    endpoint = settings.endpoint_for(service)
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    return kwargs


def client(service: str, settings: Settings) -> Any:
    """A boto3 client for ``service`` on the endpoints the settings and environment name."""
    return boto3.session.Session().client(service, **_kwargs(service, settings))  # type: ignore[call-overload]


def async_client(service: str, settings: Settings) -> AbstractAsyncContextManager[Any]:
    """An aiobotocore client context manager: ``async with async_client("kinesis", s) as k:``."""
    return get_session().create_client(service, **_kwargs(service, settings))
