"""``streamrec infra render``: a CloudFormation template of the whole deployment.

Built from the same definitions ``streamrec infra apply`` creates (``infra.resources``, through
the spec functions of ``infra.apply``) and one environment's data (``infra.environments``).
The template is plain data (long-form intrinsics), written as YAML (docs/decisions/0015).

    render(settings, environment("prod"))  ->  dict
    to_yaml(template)                      ->  str
"""

from __future__ import annotations

import yaml

from infra.cloudformation.alarms import alarm_resources
from infra.cloudformation.compute import compute_resources
from infra.cloudformation.data import data_resources
from infra.cloudformation.intrinsics import Json, att, equals, if_, not_, ref
from infra.cloudformation.jobs import lambda_resources, schedule_resources
from infra.cloudformation.network import REDIS_URL, network_resources
from infra.environments import Environment
from infra.resources import resources
from infra.settings import Settings

PARAMETERS: dict[str, Json] = {
    "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "VPC of the tasks and Redis"},
    "PrivateSubnetIds": {
        "Type": "List<AWS::EC2::Subnet::Id>",
        "Description": "subnets of the tasks and Redis (with a route to the AWS APIs)",
    },
    "PublicSubnetIds": {
        "Type": "List<AWS::EC2::Subnet::Id>",
        "Description": "subnets of the worker's load balancer",
    },
    "ImageRepository": {
        "Type": "String",
        "Default": "streamrec",
        "Description": "ECR repository (in this account and region) of the Dockerfile's image",
    },
    "ImageTag": {"Type": "String", "Default": "latest", "Description": "image tag to run"},
    "ConsumerRuntime": {
        "Type": "String",
        "AllowedValues": ["ecs", "lambda"],
        "Default": "ecs",
        "Description": "ecs: streamrec consume on Fargate; lambda: an event source mapping",
    },
    "LambdaCodeBucket": {
        "Type": "String",
        "Default": "",
        "Description": "ConsumerRuntime=lambda: bucket of the function's zip",
    },
    "LambdaCodeKey": {
        "Type": "String",
        "Default": "streamrec-lambda.zip",
        "Description": "ConsumerRuntime=lambda: key of the function's zip",
    },
    "LakeWriter": {
        "Type": "String",
        "AllowedValues": ["lander", "firehose"],
        "Default": "lander",
        "Description": "firehose: also deploy a Firehose delivery stream writing the lake",
    },
    "CertificateArn": {
        "Type": "String",
        "Default": "",
        "Description": "ACM certificate of the load balancer (HTTPS on 443); empty: HTTP on 80",
    },
    "AllowedCidr": {
        "Type": "String",
        "Default": "0.0.0.0/0",
        "Description": "who may reach the load balancer",
    },
    "AlarmEmail": {"Type": "String", "Default": "", "Description": "alarm notifications to"},
}

CONDITIONS: dict[str, Json] = {
    "UseEcsConsumers": equals(ref("ConsumerRuntime"), "ecs"),
    "UseLambdaConsumers": equals(ref("ConsumerRuntime"), "lambda"),
    "UseFirehose": equals(ref("LakeWriter"), "firehose"),
    "HasCertificate": not_(equals(ref("CertificateArn"), "")),
    "HasAlarmEmail": not_(equals(ref("AlarmEmail"), "")),
}


RULES: dict[str, Json] = {
    "LambdaNeedsCode": {
        "RuleCondition": equals(ref("ConsumerRuntime"), "lambda"),
        "Assertions": [
            {
                "Assert": not_(equals(ref("LambdaCodeBucket"), "")),
                "AssertDescription": "ConsumerRuntime=lambda needs LambdaCodeBucket",
            }
        ],
    }
}


def render(settings: Settings, environment: Environment) -> Json:
    """The template of ``environment`` for the resources ``settings`` name."""
    res = resources(settings, environment)
    body: dict[str, Json] = {}
    for part in (
        data_resources(res, environment),
        network_resources(environment),
        compute_resources(settings, res, environment),
        lambda_resources(settings, res, environment),
        schedule_resources(environment),
        alarm_resources(res, environment),
    ):
        overlap = body.keys() & part.keys()
        assert not overlap, f"logical ids defined twice: {sorted(overlap)}"
        body |= part
    scheme = if_("HasCertificate", "https", "http")
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"streamrec {environment.name}: stream, features, lake, consumers, "
        "worker, retraining (rendered by streamrec infra render)",
        "Parameters": PARAMETERS,
        "Rules": RULES,
        "Conditions": CONDITIONS,
        "Resources": body,
        "Outputs": {
            "WorkerUrl": {
                "Description": "the recommender API",
                "Value": {"Fn::Join": ["", [scheme, "://", att("LoadBalancer", "DNSName")]]},
            },
            "StreamArn": {"Value": att("EventStream", "Arn")},
            "LakeBucket": {"Value": ref("Lake")},
            "ClusterName": {"Value": ref("Cluster")},
            "IngestApiKeySecret": {
                "Description": "the API key of POST /events",
                "Value": ref("IngestApiKey"),
            },
            "RedisUrl": {"Value": REDIS_URL},
        },
    }


class _Dumper(yaml.SafeDumper):
    """No anchors and aliases for objects used twice: CloudFormation rejects YAML aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def to_yaml(template: Json) -> str:
    """The template as YAML, keys in the order they were built."""
    return yaml.dump(template, Dumper=_Dumper, sort_keys=False, width=100)
