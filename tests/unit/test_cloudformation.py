"""The rendered templates: cfn-lint clean, least privilege, and built from the definitions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint

from feature_store.lake import error_key, object_key
from infra.cloudformation import render, to_yaml
from infra.environments import ENVIRONMENTS, environment, markdown_table
from infra.resources import FEATURES_TTL_ATTRIBUTE
from infra.settings import Settings
from producers.schema import event_columns
from streamrec.cli import main

ENVS = list(ENVIRONMENTS)
# Actions IAM defines without any resource type: a policy can only grant them on "*".
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
}
# cfn-lint resolves a parameter's default: LambdaCodeBucket's is "" (only ConsumerRuntime=lambda
# needs it, and the template's rule LambdaNeedsCode asserts it is then set)
ACCEPTED_WARNINGS = {("W1030", "Resources/ConsumerFunction/Properties/Code/S3Bucket/Ref")}

SETTINGS = Settings(
    stream_name="shop-events",
    features_table="shop-features",
    checkpoints_table="shop-checkpoints",
    bucket="shop-lake-123",
    glue_database="shop",
    glue_events_table="clicks",
    dead_letter_prefix="poison/",
)


@cache
def _template(env: str) -> dict[str, Any]:
    return render(SETTINGS, environment(env))


def _resources(env: str, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in _template(env)["Resources"].items() if r["Type"] == kind}


def _props(env: str, logical_id: str) -> dict[str, Any]:
    return _template(env)["Resources"][logical_id]["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_cfn_lint_finds_no_error_and_no_unexpected_warning(env: str) -> None:
    matches = lint(to_yaml(_template(env)), config=ManualArgs(regions=["us-east-1"]))
    found = [(m.rule.id, "/".join(map(str, m.path)), m.message) for m in matches]
    errors = [f for f in found if f[0].startswith("E")]
    assert not errors, errors
    unexpected = [f for f in found if (f[0], f[1]) not in ACCEPTED_WARNINGS]
    assert not unexpected, unexpected


def _statements(env: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in _resources(env, "AWS::IAM::Role").items():
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement


def _too_broad(resource: Any) -> bool:
    """``*``, a whole service or account (``...:*``), or every object of the bucket."""
    text = resource if isinstance(resource, str) else resource.get("Fn::Sub", "")
    return text == "*" or text.endswith(":*") or bool(re.fullmatch(r"\$\{\w+\.Arn\}/\*", text))


@pytest.mark.parametrize("env", ENVS)
def test_no_policy_grants_star_actions_or_resources_where_a_specific_one_exists(env: str) -> None:
    statements = list(_statements(env))
    assert len(statements) > 20
    for role, statement in statements:
        assert statement["Effect"] == "Allow", role
        assert "NotAction" not in statement and "NotResource" not in statement, role
        actions = statement["Action"]
        for action in actions:
            service, _, verb = action.partition(":")
            assert service and verb and "*" not in action, f"{role}: wildcard action {action}"
        broad = [r for r in statement["Resource"] if _too_broad(r)]
        if broad:
            assert set(actions) <= STAR_RESOURCE_ACTIONS, f"{role}: {actions} on {broad}"


@pytest.mark.parametrize("env", ENVS)
def test_one_role_per_component_each_assumed_by_one_service(env: str) -> None:
    roles = _resources(env, "AWS::IAM::Role")
    components = {
        "ConsumerTaskRole",
        "WorkerTaskRole",
        "TrainerTaskRole",
        "ConsumerFunctionRole",
        "FirehoseRole",
        "ScheduleRole",
    }
    assert components <= set(roles)
    for name, role in roles.items():
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert len(trust) == 1 and isinstance(trust[0]["Principal"]["Service"], str), name
    # the worker alone reads the ingest key; the consumers alone touch the checkpoints table
    readers = [n for n, s in _statements(env) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert readers == ["WorkerExecutionRole"]
    checkpoints = {"Fn::GetAtt": ["CheckpointsTable", "Arn"]}
    checkpoint_users = {n for n, s in _statements(env) if checkpoints in s["Resource"]}
    assert checkpoint_users == {"ConsumerTaskRole"}


def test_dev_stream_is_on_demand_and_prod_provisioned_with_backups_kept() -> None:
    dev, prod = _props("dev", "EventStream"), _props("prod", "EventStream")
    assert dev["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"} and "ShardCount" not in dev
    assert prod["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert prod["ShardCount"] == ENVIRONMENTS["prod"].stream_shards
    assert _props("staging", "EventStream")["ShardCount"] == ENVIRONMENTS["staging"].stream_shards
    for table in ("FeaturesTable", "CheckpointsTable"):
        pitr = "PointInTimeRecoverySpecification"
        assert _props("prod", table)[pitr] == {"PointInTimeRecoveryEnabled": True}
        assert _props("dev", table)[pitr] == {"PointInTimeRecoveryEnabled": False}
        assert _template("prod")["Resources"][table]["DeletionPolicy"] == "Retain"
        assert "DeletionPolicy" not in _template("dev")["Resources"][table]


@pytest.mark.parametrize("env", ENVS)
def test_tables_bucket_and_glue_come_from_the_settings_and_the_event_model(env: str) -> None:
    features = _props(env, "FeaturesTable")
    assert features["TableName"] == "shop-features"
    assert features["BillingMode"] == "PAY_PER_REQUEST"
    assert features["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert features["TimeToLiveSpecification"]["AttributeName"] == FEATURES_TTL_ATTRIBUTE
    assert _props(env, "CheckpointsTable")["TableName"] == "shop-checkpoints"
    assert "TimeToLiveSpecification" not in _props(env, "CheckpointsTable")

    bucket = _props(env, "Lake")
    assert bucket["BucketName"] == "shop-lake-123"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    rules = {r["Prefix"]: r for r in bucket["LifecycleConfiguration"]["Rules"] if "Prefix" in r}
    assert rules["poison/"]["ExpirationInDays"] == ENVIRONMENTS[env].dead_letter_expiration_days

    table = _props(env, "EventsGlueTable")["TableInput"]
    assert table["Name"] == "clicks"
    assert _props(env, "GlueDatabase")["DatabaseInput"]["Name"] == "shop"
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == event_columns()
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt", "hour"]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.hour.range"] == "0,23"
    assert parameters["storage.location.template"] == (
        "s3://shop-lake-123/events/dt=${dt}/hour=${hour}/"
    )


def _expand(prefix: str, when: datetime, error_type: str) -> str:
    """Firehose's expansion of !{timestamp:...} (Java date patterns) and !{firehose:...}."""
    java = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}

    def timestamp(match: re.Match[str]) -> str:
        pattern = re.sub("yyyy|MM|dd|HH", lambda m: java[m.group()], match.group(1))
        return when.strftime(pattern)

    prefix = re.sub(r"!\{timestamp:([^}]*)\}", timestamp, prefix)
    return prefix.replace("!{firehose:error-output-type}", error_type)


@pytest.mark.parametrize("env", ENVS)
def test_firehose_writes_the_lake_layout_of_the_lander(env: str) -> None:
    firehose = _template(env)["Resources"]["EventsFirehose"]
    assert firehose["Condition"] == "UseFirehose"
    properties = firehose["Properties"]
    assert properties["DeliveryStreamType"] == "KinesisStreamAsSource"
    destination = properties["ExtendedS3DestinationConfiguration"]
    assert 64 <= destination["BufferingHints"]["SizeInMBs"] <= 128
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["SchemaConfiguration"]["TableName"] == {"Ref": "EventsGlueTable"}
    assert conversion["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"] == {
        "Compression": "SNAPPY"
    }
    when = datetime(2024, 5, 1, 7, 30, 5, tzinfo=UTC)
    ms = int(when.timestamp() * 1000)
    lander_object = object_key("events/", "shop-events", ms, "u")
    assert lander_object.startswith(_expand(destination["Prefix"], when, ""))
    lander_error = error_key("lake-errors/", "shop-events", ms, "u")
    error_prefix = destination["ErrorOutputPrefix"]
    assert lander_error.startswith(_expand(error_prefix, when, "format-conversion-failed"))
    assert properties["DeliveryStreamName"] == "shop-events"  # objects are named after it
    # with Firehose writing the lake, the consumers' lander is off: no event lands twice
    off = {"Fn::If": ["UseFirehose", "false", "true"]}
    consumer = next(c for c in _containers(env) if c["Name"] == "consumer")
    assert {"Name": "STREAMREC_LANDER", "Value": off} in consumer["Environment"]
    function = _props(env, "ConsumerFunction")["Environment"]["Variables"]
    assert function["STREAMREC_LANDER"] == off


def _containers(env: str) -> Iterator[dict[str, Any]]:
    for definition in _resources(env, "AWS::ECS::TaskDefinition").values():
        yield from definition["Properties"]["ContainerDefinitions"]


@pytest.mark.parametrize("env", ENVS)
def test_components_get_the_settings_names_as_variables_streamrec_reads(env: str) -> None:
    fields = {f"STREAMREC_{name.upper()}" for name in Settings.model_fields}
    commands = {}
    for container in _containers(env):
        variables = {v["Name"]: v["Value"] for v in container["Environment"]}
        assert set(variables) <= fields, set(variables) - fields
        assert variables["STREAMREC_STREAM_NAME"] == "shop-events"
        assert variables["STREAMREC_FEATURES_TABLE"] == "shop-features"
        assert variables["STREAMREC_DEAD_LETTER_PREFIX"] == "poison/"
        assert "STREAMREC_INGEST_API_KEYS" not in variables  # a secret, never plain text
        commands[container["Name"]] = container["Command"]
    assert commands == {
        "consumer": ["consume"],
        "worker": ["serve"],
        "trainer": ["train", "--model", SETTINGS.serving_model, "--publish"],
    }
    function = _props(env, "ConsumerFunction")["Environment"]["Variables"]
    assert set(function) <= fields and function["STREAMREC_CHECKPOINTS_TABLE"] == "shop-checkpoints"
    worker = next(c for c in _containers(env) if c["Name"] == "worker")
    assert worker["Secrets"] == [
        {"Name": "STREAMREC_INGEST_API_KEYS", "ValueFrom": {"Ref": "IngestApiKey"}}
    ]


def test_retraining_is_weekly_in_prod_and_off_in_dev() -> None:
    prod, dev = _props("prod", "RetrainSchedule"), _props("dev", "RetrainSchedule")
    assert prod["State"] == "ENABLED" and "SUN" in prod["ScheduleExpression"]
    assert dev["State"] == "DISABLED"
    target = prod["Targets"][0]["EcsParameters"]
    assert target["TaskDefinitionArn"] == {"Ref": "TrainerTaskDefinition"}


@pytest.mark.parametrize("env", ENVS)
def test_alarms_watch_iterator_age_dead_letters_and_worker_5xx(env: str) -> None:
    alarms = {
        p["MetricName"]: p
        for p in (a["Properties"] for a in _resources(env, "AWS::CloudWatch::Alarm").values())
    }
    assert set(alarms) == {
        "GetRecords.IteratorAgeMilliseconds",
        "PutRequests",
        "HTTPCode_Target_5XX_Count",
    }
    age = alarms["GetRecords.IteratorAgeMilliseconds"]
    assert age["Dimensions"] == [{"Name": "StreamName", "Value": {"Ref": "EventStream"}}]
    assert age["Threshold"] == ENVIRONMENTS[env].iterator_age_alarm_ms
    dead = {d["Name"]: d["Value"] for d in alarms["PutRequests"]["Dimensions"]}
    metrics = _props(env, "Lake")["MetricsConfigurations"]
    assert metrics == [{"Id": dead["FilterId"], "Prefix": "poison/"}]


def test_yaml_has_no_aliases_and_reads_back_to_the_template() -> None:
    text = to_yaml(_template("prod"))
    assert not re.search(r"[&*]id\d+", text)
    assert yaml.safe_load(text) == _template("prod")


def test_an_unknown_environment_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'qa'.*dev, staging, prod"):
        environment("qa")


def test_the_command_writes_the_template_to_a_file(tmp_path, capsys) -> None:
    out = tmp_path / "dev.yaml"
    assert main(["infra", "render", "--env", "dev", "--out", str(out)]) == 0
    template = yaml.safe_load(out.read_text())
    assert template["Resources"]["EventStream"]["Properties"]["Name"] == Settings().stream_name
    assert "dev" in capsys.readouterr().err


def test_the_readme_lists_the_environments_as_generated() -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    begin, end = "<!-- environments:begin -->\n", "\n<!-- environments:end -->"
    listed = text[text.index(begin) + len(begin) : text.index(end)]
    assert listed == markdown_table(), "regenerate with infra.environments.markdown_table()"


def test_redis_takes_only_the_worker_and_the_consumers_and_metrics_stay_inside() -> None:
    ingress = _props("prod", "CacheSecurityGroup")["SecurityGroupIngress"]
    sources = {rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in ingress}
    assert sources == {"WorkerSecurityGroup", "ConsumerSecurityGroup"}
    assert all(rule["FromPort"] == rule["ToPort"] == 6379 for rule in ingress)
    redis_users = {
        c["Name"]
        for c in _containers("prod")
        if any(v["Name"] == "STREAMREC_REDIS_URL" for v in c["Environment"])
    }
    assert redis_users == {"consumer", "worker"}
    # the Lambda consumer too: in the consumers' group and subnets, with their Redis URL
    consumer = next(c for c in _containers("prod") if c["Name"] == "consumer")
    url = next(v["Value"] for v in consumer["Environment"] if v["Name"] == "STREAMREC_REDIS_URL")
    function = _props("prod", "ConsumerFunction")
    assert function["Environment"]["Variables"]["STREAMREC_REDIS_URL"] == url
    assert function["VpcConfig"] == {
        "SubnetIds": {"Ref": "PrivateSubnetIds"},
        "SecurityGroupIds": [{"Fn::GetAtt": ["ConsumerSecurityGroup", "GroupId"]}],
    }
    granted = {
        a for n, s in _statements("prod") if n == "ConsumerFunctionRole" for a in s["Action"]
    }
    assert {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"} <= granted
    assert _props("prod", "Cache")["TransitEncryptionEnabled"] is True
    hidden = _props("prod", "HideMetricsRule")
    assert hidden["Conditions"][0]["Values"][0] == "/metrics"
    assert hidden["Actions"][0]["Type"] == "fixed-response"


def test_the_registry_is_read_by_the_worker_and_written_by_the_trainer_only() -> None:
    models = {"Fn::Sub": "${Lake.Arn}/" + SETTINGS.models_prefix + "*"}
    access = {
        (role, action)
        for role, statement in _statements("prod")
        if models in statement["Resource"]
        for action in statement["Action"]
    }
    assert access == {
        ("WorkerTaskRole", "s3:GetObject"),
        ("TrainerTaskRole", "s3:GetObject"),
        ("TrainerTaskRole", "s3:PutObject"),
    }
