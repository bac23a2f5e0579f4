"""``infra.apply`` on the embedded stack: idempotent, with Time to Live on the features table."""

from __future__ import annotations

from infra.apply import apply
from infra.clients import client
from infra.settings import Settings


def test_the_features_table_has_ttl_on_expires_at_and_apply_runs_twice(applied: Settings) -> None:
    apply(applied)  # everything exists already: nothing fails
    ttl = client("dynamodb", applied).describe_time_to_live(TableName=applied.features_table)
    description = ttl["TimeToLiveDescription"]
    assert description["TimeToLiveStatus"] == "ENABLED"
    assert description["AttributeName"] == "expires_at"
