"""One IAM role per component, each allowed only the calls its code makes, on its resources.

The actions below are the ones streamrec's code calls (``grep`` the clients' methods: the
consumers' runner, leases, checkpoints, feature store and lander; the worker's recommender and
ingest producer). ``*`` is used only for an action that takes no resource
(``ecr:GetAuthorizationToken``, and the EC2 Describe calls Lambda makes to attach the consumer
function to the VPC); tests/unit/test_cloudformation.py checks every policy of every rendered
template for it.
"""

from __future__ import annotations

from typing import Any

from infra.cloudformation.intrinsics import Json, arn, att, resource, sub, tags
from infra.resources import Resources

# logical ids of the data resources the policies name
STREAM, FEATURES, CHECKPOINTS, BUCKET = "EventStream", "FeaturesTable", "CheckpointsTable", "Lake"

# Confused-deputy guards the services document for their roles' trust policies; the others
# (Lambda, EventBridge) get none rather than a key they might not send.
TRUST_CONDITIONS: dict[str, Json] = {
    "ecs-tasks.amazonaws.com": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    "firehose.amazonaws.com": {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}},
}
KINESIS_READ = ["kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords"]
# what Lambda does with a VPC function's role to give it network interfaces in the subnets (the
# actions of the managed AWSLambdaVPCAccessExecutionRole, each on the resources it takes)
VPC_DESCRIBE = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
VPC_INTERFACES = [
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
ECR_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]


def allow(actions: list[str], resources: list[Any], **condition: Any) -> Json:
    """An Allow statement; ``condition`` becomes its Condition block."""
    statement: Json = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def role(principal: str, statements: list[Json], component: str, environment: str) -> Json:
    """A role ``principal`` (``ecs-tasks.amazonaws.com``, ...) assumes, with one inline policy."""
    assume: Json = {
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": "sts:AssumeRole",
    }
    if principal in TRUST_CONDITIONS:
        assume["Condition"] = TRUST_CONDITIONS[principal]
    trust = {"Version": "2012-10-17", "Statement": [assume]}
    policy = {"Version": "2012-10-17", "Statement": statements}
    return resource(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": trust,
            "Policies": [{"PolicyName": component, "PolicyDocument": policy}],
            "Tags": tags(component, environment),
        },
    )


def objects(prefix: str) -> Json:
    """The ARN of every object under ``prefix`` of the lake bucket."""
    return sub("${" + BUCKET + ".Arn}/" + prefix + "*")


def glue_arns(res: Resources) -> list[Json]:
    """The catalog, the database and the events table: what a Glue table call is checked on."""
    db, table = res.events_table.database, res.events_table.name
    return [
        arn("glue", "catalog"),
        arn("glue", f"database/{db}"),
        arn("glue", f"table/{db}/{table}"),
    ]


def lander_statements(res: Resources) -> list[Json]:
    """The feature processor, the Parquet lander and the dead-letter sink of one consumer."""
    bucket = res.bucket
    return [
        allow(["dynamodb:BatchGetItem", "dynamodb:PutItem"], [att(FEATURES, "Arn")]),
        allow(
            ["s3:PutObject"],
            [
                objects(bucket.events_prefix),
                objects(bucket.lake_errors_prefix),
                objects(bucket.dead_letter_prefix),
            ],
        ),
        allow(["glue:GetTable", "glue:BatchCreatePartition"], glue_arns(res)),
    ]


def consumer_statements(res: Resources) -> list[Json]:
    """``streamrec consume`` (embedded runner): shards, leases and checkpoints, and the lander."""
    checkpoints = [
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:Scan",
    ]
    return [
        allow(KINESIS_READ, [att(STREAM, "Arn")]),
        allow(checkpoints, [att(CHECKPOINTS, "Arn")]),
        *lander_statements(res),
    ]


def lambda_statements(res: Resources, log_group: str) -> list[Json]:
    """The Lambda consumer: the event source mapping reads the stream with this role."""
    mapping = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", *KINESIS_READ]
    interfaces = arn("ec2", "network-interface/*")
    placed = [interfaces, arn("ec2", "subnet/*"), arn("ec2", "security-group/*")]
    return [
        allow(mapping, [att(STREAM, "Arn")]),
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [att(log_group, "Arn")]),
        allow(["ec2:CreateNetworkInterface"], placed),
        allow(VPC_INTERFACES, [interfaces]),
        allow(VPC_DESCRIBE, ["*"]),  # Describe calls take no resource
        *lander_statements(res),
    ]


def worker_statements(res: Resources) -> list[Json]:
    """``streamrec serve``: reads features, loads the promoted model from the registry; ingest
    puts events (its producer lists the shards)."""
    return [
        allow(["dynamodb:BatchGetItem"], [att(FEATURES, "Arn")]),
        allow(["kinesis:ListShards", "kinesis:PutRecords"], [att(STREAM, "Arn")]),
        *_registry(res, write=False),
    ]


def trainer_statements(res: Resources) -> list[Json]:
    """``streamrec train --publish``: reads the lake's Parquet (listing it needs the bucket's
    ListBucket, in ``_registry``), registers a version and promotes it (reads the pointer)."""
    return [
        *_registry(res, write=True),
        allow(["s3:GetObject"], [objects(res.bucket.events_prefix)]),
    ]


def _registry(res: Resources, write: bool) -> list[Json]:
    # ListBucket on the bucket (a specific resource, no prefix condition): without it S3 answers
    # a missing key (no promoted version yet) with 403 instead of NoSuchKey, which the registry
    # reads as "none yet"
    actions = ["s3:GetObject", "s3:PutObject"] if write else ["s3:GetObject"]
    return [
        allow(["s3:ListBucket"], [att(BUCKET, "Arn")]),
        allow(actions, [objects(res.bucket.models_prefix)]),
    ]


def firehose_statements(res: Resources, log_group: str) -> list[Json]:
    """The delivery stream: reads the stream, converts through the Glue schema, writes S3."""
    bucket = res.bucket
    writes = [
        "s3:AbortMultipartUpload",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:PutObject",
    ]
    return [
        allow(["kinesis:DescribeStream", *KINESIS_READ], [att(STREAM, "Arn")]),
        allow(
            writes,
            [
                att(BUCKET, "Arn"),
                objects(bucket.events_prefix),
                objects(bucket.lake_errors_prefix),
            ],
        ),
        allow(["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"], glue_arns(res)),
        allow(["logs:PutLogEvents"], [att(log_group, "Arn")]),
    ]


def execution_statements(repository: Json, log_group: str, secret: str | None = None) -> list[Json]:
    """An ECS task's execution role: pull the image, write its logs, read its secret."""
    statements = [
        allow(["ecr:GetAuthorizationToken"], ["*"]),
        allow(ECR_PULL, [repository]),
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [att(log_group, "Arn")]),
    ]
    if secret is not None:
        statements.append(allow(["secretsmanager:GetSecretValue"], [{"Ref": secret}]))
    return statements


def schedule_statements(task_definition: str, roles: list[str], cluster: str) -> list[Json]:
    """EventBridge's role for the retraining rule: run that task on that cluster, pass its roles."""
    return [
        allow(
            ["ecs:RunTask"],
            [{"Ref": task_definition}],
            ArnEquals={"ecs:cluster": att(cluster, "Arn")},
        ),
        allow(
            ["iam:PassRole"],
            [att(name, "Arn") for name in roles],
            StringEquals={"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        ),
    ]
