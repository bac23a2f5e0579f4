"""The Lambda consumer (condition UseLambdaConsumers) and the scheduled retraining task."""

from __future__ import annotations

from infra.cloudformation import iam
from infra.cloudformation.compute import LANDER, settings_environment
from infra.cloudformation.intrinsics import Json, att, ref, resource, tags
from infra.cloudformation.network import REDIS_URL
from infra.environments import Environment
from infra.resources import Resources
from infra.settings import Settings

LAMBDA_HANDLER = "streamrec.lambda_entry.handler"
LAMBDA_RUNTIME = "python3.12"


def lambda_resources(settings: Settings, res: Resources, env: Environment) -> dict[str, Json]:
    """The Lambda function behind a Kinesis event source mapping, instead of ECS consumers.

    The code is a zip of streamrec and its dependencies at ``LambdaCodeBucket``/``LambdaCodeKey``
    (building it is not part of the template). The function runs in the private subnets, so it
    reaches Redis; like the tasks there, it reaches DynamoDB, S3 and Glue through their route to
    the AWS APIs."""
    on = {"Condition": "UseLambdaConsumers"}
    role = iam.role(
        "lambda.amazonaws.com",
        iam.lambda_statements(res, "ConsumerFunctionLogGroup"),
        "lambda-consumer",
        env.name,
    )
    role["Condition"] = "UseLambdaConsumers"
    function = resource(
        "AWS::Lambda::Function",
        {
            "Handler": LAMBDA_HANDLER,
            "Runtime": LAMBDA_RUNTIME,
            "Code": {"S3Bucket": ref("LambdaCodeBucket"), "S3Key": ref("LambdaCodeKey")},
            "Role": att("ConsumerFunctionRole", "Arn"),
            "MemorySize": 1024,
            "Timeout": 300,
            "Environment": {
                "Variables": settings_environment(settings)
                | {"STREAMREC_LANDER": LANDER, "STREAMREC_REDIS_URL": REDIS_URL}
            },
            # in the consumers' subnets and group, which Redis lets in: the processor bumps the
            # generations of the users it wrote (cache invalidation), as the ECS consumers do
            "VpcConfig": {
                "SubnetIds": ref("PrivateSubnetIds"),
                "SecurityGroupIds": [att("ConsumerSecurityGroup", "GroupId")],
            },
            "LoggingConfig": {"LogGroup": ref("ConsumerFunctionLogGroup")},
            "Tags": tags("lambda-consumer", env.name),
        },
        **on,
    )
    mapping = resource(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": att(iam.STREAM, "Arn"),
            "FunctionName": ref("ConsumerFunction"),
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 1000,
            "MaximumBatchingWindowInSeconds": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": -1,  # poison goes to the dead-letter prefix, not away
        },
        **on,
    )
    return {
        "ConsumerFunctionLogGroup": resource(
            "AWS::Logs::LogGroup", {"RetentionInDays": env.log_retention_days}, **on
        ),
        "ConsumerFunctionRole": role,
        "ConsumerFunction": function,
        "ConsumerEventSourceMapping": mapping,
    }


def schedule_resources(env: Environment) -> dict[str, Json]:
    """An EventBridge rule running ``streamrec train`` on the cluster; disabled without a
    schedule (dev: run it by hand with ``aws ecs run-task``)."""
    roles = ["TrainerTaskRole", "TrainerExecutionRole"]
    target = {
        "Id": "train",
        "Arn": att("Cluster", "Arn"),
        "RoleArn": att("ScheduleRole", "Arn"),
        "EcsParameters": {
            "TaskDefinitionArn": ref("TrainerTaskDefinition"),
            "TaskCount": 1,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {
                "AwsVpcConfiguration": {
                    "Subnets": ref("PrivateSubnetIds"),
                    "SecurityGroups": [att("TrainerSecurityGroup", "GroupId")],
                    "AssignPublicIp": "DISABLED",
                }
            },
        },
    }
    return {
        "ScheduleRole": iam.role(
            "events.amazonaws.com",
            iam.schedule_statements("TrainerTaskDefinition", roles, "Cluster"),
            "retrain-schedule",
            env.name,
        ),
        "RetrainSchedule": resource(
            "AWS::Events::Rule",
            {
                "Description": "streamrec train on ECS",
                "ScheduleExpression": env.retrain_schedule or "rate(7 days)",
                "State": "ENABLED" if env.retrain_schedule else "DISABLED",
                "Targets": [target],
            },
        ),
    }
