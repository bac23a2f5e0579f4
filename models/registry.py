"""The model registry: versioned artifacts in S3, each with its metrics, and a promoted version.

Layout under ``s3://<bucket>/<prefix>`` (``STREAMREC_MODELS_PREFIX``, default ``models/``):

    <name>/versions/<version>/artifact.npz    the model's own artifact (bytes, as given)
    <name>/versions/<version>/meta.json       ModelVersion: metrics, params, data range, sha256
    <name>/current.json                       {"version": ...}: the promoted version

Versions are named ``v<UTC time>-<random>`` and sort by creation. A version is promoted only if
it beats the promoted one on the validation metric by the margin (relative): ``candidate >=
current * (1 + margin)`` and ``candidate > current``; the first version of a name is promoted as
long as it has the metric. The pointer is one PutObject: a reader sees the old version or the
new one. Promotions of one name are meant to come from one trainer at a time (the pointer is not
compare-and-set).

    StreamrecError
    └── RegistryError   an artifact or its metadata is missing, unreadable or corrupt
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from infra.errors import StreamrecError

DEFAULT_METRIC = "ndcg@10"


class RegistryError(StreamrecError):
    """A registered artifact or its metadata is missing, unreadable or does not match."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: str
    metrics: dict[str, float]  # validation metrics (hr@10, ndcg@10, ...)
    params: dict[str, Any] = field(default_factory=dict)
    data_from_ms: int = 0  # event-time range of the training data, [from, to]
    data_to_ms: int = 0
    events: int = 0  # training interactions
    sha256: str = ""
    size: int = 0
    created_ms: int = 0


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` decided and why."""

    promoted: bool
    candidate: ModelVersion
    current: ModelVersion | None
    reason: str


class ModelRegistry:
    """Model versions in one S3 bucket, through an injected aiobotocore S3 client."""

    def __init__(self, s3: Any, bucket: str, prefix: str = "models/") -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix

    def _key(self, name: str, *parts: str) -> str:
        return "/".join((self._prefix.rstrip("/"), name, *parts))

    async def publish(
        self,
        name: str,
        artifact: bytes,
        metrics: dict[str, float],
        params: dict[str, Any] | None = None,
        data_range: tuple[int, int] = (0, 0),
        events: int = 0,
    ) -> ModelVersion:
        """Store a new version (not promoted yet): the artifact first, then its metadata."""
        now = dt.datetime.now(dt.UTC)
        version = f"v{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
        meta = ModelVersion(
            name=name,
            version=version,
            metrics=dict(metrics),
            params=dict(params or {}),
            data_from_ms=data_range[0],
            data_to_ms=data_range[1],
            events=events,
            sha256=hashlib.sha256(artifact).hexdigest(),
            size=len(artifact),
            created_ms=int(now.timestamp() * 1000),
        )
        await self._put(self._key(name, "versions", version, "artifact.npz"), artifact)
        await self._put(self._key(name, "versions", version, "meta.json"), _json(asdict(meta)))
        return meta

    async def version(self, name: str, version: str) -> ModelVersion:
        """The metadata of one version; ``RegistryError`` when there is none."""
        raw = await self._get(self._key(name, "versions", version, "meta.json"))
        if raw is None:
            raise RegistryError(f"model {name!r} has no version {version!r}")
        try:
            return ModelVersion(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"metadata of {name}/{version} is unreadable: {exc}") from exc

    async def versions(self, name: str) -> list[str]:
        """Every version of ``name``, oldest first."""
        prefix = self._key(name, "versions") + "/"
        found: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            found += [
                p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])
            ]
        return sorted(found)

    async def current(self, name: str) -> ModelVersion | None:
        """The promoted version of ``name``, or None before the first promotion."""
        raw = await self._get(self._key(name, "current.json"))
        if raw is None:
            return None
        try:
            version = json.loads(raw)["version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"the pointer of {name!r} is unreadable: {exc}") from exc
        return await self.version(name, version)

    async def artifact(self, version: ModelVersion) -> bytes:
        """The version's artifact, checked against its recorded digest."""
        data = await self._get(self._key(version.name, "versions", version.version, "artifact.npz"))
        if data is None:
            raise RegistryError(f"the artifact of {version.name}/{version.version} is missing")
        if hashlib.sha256(data).hexdigest() != version.sha256:
            raise RegistryError(
                f"the artifact of {version.name}/{version.version} does not match its sha256"
            )
        return data

    async def promote(
        self, candidate: ModelVersion, metric: str = DEFAULT_METRIC, margin: float = 0.01
    ) -> Promotion:
        """Point ``current`` at ``candidate`` if it beats the promoted version by ``margin``."""
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if metric not in candidate.metrics:
            raise RegistryError(
                f"{candidate.name}/{candidate.version} has no {metric!r} metric: "
                f"it has {sorted(candidate.metrics)}"
            )
        current = await self.current(candidate.name)
        new = candidate.metrics[metric]
        if current is not None:
            old = current.metrics.get(metric, float("-inf"))
            needed = old * (1 + margin) if old > 0 else old
            if not (new > old and new >= needed):
                return Promotion(
                    False,
                    candidate,
                    current,
                    f"{metric} {new:.4f} does not beat {current.version}'s {old:.4f} "
                    f"by the margin {margin:.1%} (needs {max(needed, old):.4f} or more)",
                )
        body = _json({"version": candidate.version, "promoted_ms": _now_ms()})
        await self._put(self._key(candidate.name, "current.json"), body)
        was = "nothing" if current is None else current.version
        return Promotion(True, candidate, current, f"{metric} {new:.4f}; replaces {was}")

    async def _put(self, key: str, body: bytes) -> None:
        await self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)

    async def _get(self, key: str) -> bytes | None:
        try:
            response = await self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        async with response["Body"] as body:
            return await body.read()


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)
