"""CloudFormation's intrinsic functions in their long form (plain dicts, no YAML tags), so a
template is ordinary data that ``yaml.safe_dump`` and ``json.dumps`` both write."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

NO_VALUE: Json = {"Ref": "AWS::NoValue"}
PARTITION_REGION_ACCOUNT = "arn:${AWS::Partition}:{service}:${AWS::Region}:${AWS::AccountId}"


def ref(name: str) -> Json:
    """``Ref``: a parameter's value or a resource's primary identifier."""
    return {"Ref": name}


def att(name: str, attribute: str) -> Json:
    """``Fn::GetAtt``: an attribute of a resource (``Arn``, ``DNSName``, ...)."""
    return {"Fn::GetAtt": [name, attribute]}


def sub(text: str) -> Json:
    """``Fn::Sub``: ``${Name}`` and ``${Name.Attribute}`` replaced in ``text``."""
    return {"Fn::Sub": text}


def if_(condition: str, then: Any, otherwise: Any) -> Json:
    """``Fn::If`` on a condition of the template."""
    return {"Fn::If": [condition, then, otherwise]}


def equals(a: Any, b: Any) -> Json:
    """``Fn::Equals``, for conditions."""
    return {"Fn::Equals": [a, b]}


def not_(condition: Json) -> Json:
    """``Fn::Not``, for conditions."""
    return {"Fn::Not": [condition]}


def arn(service: str, resource: str) -> Json:
    """The ARN of ``resource`` of ``service`` in this stack's partition, region and account."""
    return sub(PARTITION_REGION_ACCOUNT.replace("{service}", service) + ":" + resource)


def resource(kind: str, properties: Json, **attributes: Any) -> Json:
    """A resource of type ``kind``; ``attributes`` are its top-level keys (``Condition``,
    ``DependsOn``, ``DeletionPolicy``, ...)."""
    return {"Type": kind, **attributes, "Properties": properties}


def tags(component: str, environment: str) -> list[Json]:
    """The tags every taggable resource gets."""
    return [
        {"Key": "streamrec:component", "Value": component},
        {"Key": "streamrec:environment", "Value": environment},
    ]
