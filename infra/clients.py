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
from pyarrow.fs import S3FileSystem

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


def s3_filesystem(settings: Settings) -> S3FileSystem:
    """pyarrow's S3 filesystem on the endpoint and credentials botocore resolves for S3 (the
    settings, then the standard AWS variables and profiles), so it reads what boto3 sees."""
    session = boto3.session.Session()
    endpoint_url = session.client("s3", **_kwargs("s3", settings)).meta.endpoint_url
    credentials = session.get_credentials()
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    scheme, _, host = endpoint_url.partition("://")
    on_aws = host.endswith(".amazonaws.com")  # AWS itself: the SDK's own regional endpoints
    return S3FileSystem(
        access_key=frozen.access_key if frozen else None,
        secret_key=frozen.secret_key if frozen else None,
        session_token=frozen.token if frozen else None,
        region=settings.region,
        endpoint_override=None if on_aws else host,
        scheme=scheme,
    )
