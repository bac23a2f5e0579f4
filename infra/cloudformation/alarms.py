"""CloudWatch alarms: the consumers falling behind, dead letters, the worker's 5xx answers.

They use metrics AWS publishes itself (Kinesis, S3 request metrics on the dead-letter prefix,
the load balancer), so they work before streamrec exports any metric of its own.
"""

from __future__ import annotations

from infra.cloudformation import iam
from infra.cloudformation.data import DEAD_LETTER_METRICS
from infra.cloudformation.intrinsics import Json, att, ref, resource, tags
from infra.environments import Environment
from infra.resources import Resources


def _alarm(description: str, metric: Json, threshold: int, missing: str, periods: int) -> Json:
    properties = {
        "AlarmDescription": description,
        **metric,
        "Period": 60,
        "EvaluationPeriods": periods,
        "DatapointsToAlarm": periods,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": missing,
        "AlarmActions": [ref("AlarmTopic")],
        "OKActions": [ref("AlarmTopic")],
    }
    return resource("AWS::CloudWatch::Alarm", properties)


def alarm_resources(res: Resources, env: Environment) -> dict[str, Json]:
    """Logical id -> resource: the SNS topic and the three alarms."""
    iterator_age = {
        "Namespace": "AWS/Kinesis",
        "MetricName": "GetRecords.IteratorAgeMilliseconds",
        "Dimensions": [{"Name": "StreamName", "Value": ref(iam.STREAM)}],
        "Statistic": "Maximum",
    }
    dead_letters = {
        "Namespace": "AWS/S3",
        "MetricName": "PutRequests",
        "Dimensions": [
            {"Name": "BucketName", "Value": ref(iam.BUCKET)},
            {"Name": "FilterId", "Value": DEAD_LETTER_METRICS},
        ],
        "Statistic": "Sum",
    }
    worker_5xx = {
        "Namespace": "AWS/ApplicationELB",
        "MetricName": "HTTPCode_Target_5XX_Count",
        "Dimensions": [
            {"Name": "LoadBalancer", "Value": att("LoadBalancer", "LoadBalancerFullName")}
        ],
        "Statistic": "Sum",
    }
    return {
        "AlarmTopic": resource("AWS::SNS::Topic", {"Tags": tags("alarms", env.name)}),
        "AlarmEmailSubscription": resource(
            "AWS::SNS::Subscription",
            {"TopicArn": ref("AlarmTopic"), "Protocol": "email", "Endpoint": ref("AlarmEmail")},
            Condition="HasAlarmEmail",
        ),
        # no GetRecords at all (every consumer down) is missing data: that is an alarm too
        "IteratorAgeAlarm": _alarm(
            f"consumers of {res.stream.name} behind by over "
            f"{env.iterator_age_alarm_ms // 1000} s for 5 minutes",
            iterator_age,
            env.iterator_age_alarm_ms,
            "breaching",
            5,
        ),
        "DeadLetterAlarm": _alarm(
            f"{env.dead_letter_alarm}+ records a minute sent to "
            f"s3://{res.bucket.name}/{res.bucket.dead_letter_prefix}",
            dead_letters,
            env.dead_letter_alarm,
            "notBreaching",
            1,
        ),
        "Worker5xxAlarm": _alarm(
            f"{env.worker_5xx_alarm}+ worker 5xx answers a minute",
            worker_5xx,
            env.worker_5xx_alarm,
            "notBreaching",
            1,
        ),
    }
