"""Render and apply read one set of definitions: what apply created on moto is what the template
declares (names, keys, TTL, Glue columns, partition keys and table parameters)."""

from __future__ import annotations

import pytest

from infra.clients import client
from infra.cloudformation import render
from infra.environments import ENVIRONMENTS, environment
from infra.settings import Settings


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_template_declares_what_apply_created(applied: Settings, env: str) -> None:
    resources = render(applied, environment(env))["Resources"]
    dynamodb, glue = client("dynamodb", applied), client("glue", applied)
    for logical_id, name in (
        ("FeaturesTable", applied.features_table),
        ("CheckpointsTable", applied.checkpoints_table),
    ):
        declared = resources[logical_id]["Properties"]
        created = dynamodb.describe_table(TableName=name)["Table"]
        assert declared["TableName"] == created["TableName"]
        assert declared["KeySchema"] == created["KeySchema"]
        assert declared["AttributeDefinitions"] == created["AttributeDefinitions"]
        assert declared["BillingMode"] == created["BillingModeSummary"]["BillingMode"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in declared:
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert declared["TimeToLiveSpecification"]["AttributeName"] == ttl["AttributeName"]
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"

    stream = resources["EventStream"]["Properties"]
    summary = client("kinesis", applied).describe_stream_summary(StreamName=stream["Name"])
    assert summary["StreamDescriptionSummary"]["StreamName"] == applied.stream_name
    client("s3", applied).head_bucket(Bucket=resources["Lake"]["Properties"]["BucketName"])

    declared_table = resources["EventsGlueTable"]["Properties"]["TableInput"]
    database = resources["GlueDatabase"]["Properties"]["DatabaseInput"]["Name"]
    created_table = glue.get_table(DatabaseName=database, Name=declared_table["Name"])["Table"]
    for key in ("Columns", "Location", "InputFormat", "OutputFormat", "SerdeInfo"):
        assert declared_table["StorageDescriptor"][key] == created_table["StorageDescriptor"][key]
    assert declared_table["PartitionKeys"] == created_table["PartitionKeys"]
    assert declared_table["Parameters"] == created_table["Parameters"]
