"""The data resources: stream, tables, lake bucket, Glue catalog, and the Firehose delivery stream.

Names, keys, TTL, prefixes and the Glue schema come from ``infra.resources`` (the definitions
``streamrec infra apply`` creates, through the same spec functions); the environment adds what
only a deployment has: capacity mode, backups, retention, lifecycle.
"""

from __future__ import annotations

from infra.apply import glue_table_spec, table_spec
from infra.cloudformation import iam
from infra.cloudformation.intrinsics import Json, att, ref, resource, tags
from infra.environments import Environment
from infra.resources import Resources, Table

DEAD_LETTER_METRICS = "dead-letters"  # S3 request metrics filter id of the dead-letter prefix


def data_resources(res: Resources, env: Environment) -> dict[str, Json]:
    """Logical id -> resource, for every data resource of the stack."""
    keep = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"} if env.retain_data else {}
    out = {
        iam.STREAM: _stream(res, env, keep),
        iam.FEATURES: _table(res.features, env, keep),
        iam.CHECKPOINTS: _table(res.checkpoints, env, keep),
        iam.BUCKET: _bucket(res, env, keep),
        "GlueDatabase": resource(
            "AWS::Glue::Database",
            {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseInput": {"Name": res.events_table.database},
            },
        ),
    }
    spec = glue_table_spec(res.events_table)
    out["EventsGlueTable"] = resource(
        "AWS::Glue::Table",
        {
            "CatalogId": ref("AWS::AccountId"),
            "DatabaseName": ref("GlueDatabase"),
            "TableInput": spec["TableInput"],
        },
    )
    out |= _firehose(res, env)
    return out


def _stream(res: Resources, env: Environment, keep: Json) -> Json:
    stream = res.stream
    properties: Json = {
        "Name": stream.name,
        "RetentionPeriodHours": stream.retention_hours,
        "StreamModeDetails": {"StreamMode": stream.mode},
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
        "Tags": tags("stream", env.name),
    }
    if stream.mode == "PROVISIONED":
        properties["ShardCount"] = stream.shards
    return resource("AWS::Kinesis::Stream", properties, **keep)


def _table(table: Table, env: Environment, keep: Json) -> Json:
    properties = table_spec(table)
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {
            "AttributeName": table.ttl_attribute,
            "Enabled": True,
        }
    properties["PointInTimeRecoverySpecification"] = {
        "PointInTimeRecoveryEnabled": table.point_in_time_recovery
    }
    properties["SSESpecification"] = {"SSEEnabled": True}
    properties["Tags"] = tags("table", env.name)
    return resource("AWS::DynamoDB::Table", properties, **keep)


def _bucket(res: Resources, env: Environment, keep: Json) -> Json:
    bucket = res.bucket
    rules = [
        {
            "Id": "expire-dead-letters",
            "Status": "Enabled",
            "Prefix": bucket.dead_letter_prefix,
            "ExpirationInDays": env.dead_letter_expiration_days,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
        {
            "Id": "expire-lake-errors",
            "Status": "Enabled",
            "Prefix": bucket.lake_errors_prefix,
            "ExpirationInDays": env.lake_errors_expiration_days,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
        {
            # the lander rewrites an object when a batch is redelivered: keep old versions briefly
            "Id": "expire-noncurrent-versions",
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
    ]
    properties = {
        "BucketName": bucket.name,
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
        "VersioningConfiguration": {"Status": "Enabled"},
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LifecycleConfiguration": {"Rules": rules},
        # request metrics on the dead-letter prefix: PutRequests counts dead letters written
        "MetricsConfigurations": [{"Id": DEAD_LETTER_METRICS, "Prefix": bucket.dead_letter_prefix}],
        "Tags": tags("lake", env.name),
    }
    return resource("AWS::S3::Bucket", properties, **keep)


def _firehose(res: Resources, env: Environment) -> dict[str, Json]:
    """The managed alternative to the lander (condition UseFirehose): same layout, same schema."""
    bucket = res.bucket
    on = {"Condition": "UseFirehose"}
    log_group = resource("AWS::Logs::LogGroup", {"RetentionInDays": env.log_retention_days}, **on)
    log_stream = resource(
        "AWS::Logs::LogStream",
        {"LogGroupName": ref("FirehoseLogGroup"), "LogStreamName": "S3Delivery"},
        **on,
    )
    role = iam.role(
        "firehose.amazonaws.com",
        iam.firehose_statements(res, "FirehoseLogGroup"),
        "firehose",
        env.name,
    )
    role["Condition"] = "UseFirehose"
    destination = {
        "BucketARN": att(iam.BUCKET, "Arn"),
        "RoleARN": att("FirehoseRole", "Arn"),
        # arrival time, as the lander: events/dt=YYYY-MM-DD/hour=HH/<name>-<n>-<time>-<uuid>
        "Prefix": bucket.events_prefix + "dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/",
        "ErrorOutputPrefix": bucket.lake_errors_prefix
        + "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/",
        "BufferingHints": {
            "SizeInMBs": env.firehose_buffer_mib,
            "IntervalInSeconds": env.firehose_buffer_seconds,
        },
        "CompressionFormat": "UNCOMPRESSED",  # Parquet compresses itself (Snappy)
        "CloudWatchLoggingOptions": {
            "Enabled": True,
            "LogGroupName": ref("FirehoseLogGroup"),
            "LogStreamName": ref("FirehoseLogStream"),
        },
        "DataFormatConversionConfiguration": {
            "Enabled": True,
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {
                "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}
            },
            "SchemaConfiguration": {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseName": ref("GlueDatabase"),
                "TableName": ref("EventsGlueTable"),
                "Region": ref("AWS::Region"),
                "RoleARN": att("FirehoseRole", "Arn"),
                "VersionId": "LATEST",
            },
        },
    }
    delivery = resource(
        "AWS::KinesisFirehose::DeliveryStream",
        {
            "DeliveryStreamName": res.stream.name,  # objects are named after it, as the lander's
            "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {
                "KinesisStreamARN": att(iam.STREAM, "Arn"),
                "RoleARN": att("FirehoseRole", "Arn"),
            },
            "ExtendedS3DestinationConfiguration": destination,
            "Tags": tags("firehose", env.name),
        },
        **on,
    )
    return {
        "FirehoseLogGroup": log_group,
        "FirehoseLogStream": log_stream,
        "FirehoseRole": role,
        "EventsFirehose": delivery,
    }
