"""Security groups, the worker's load balancer, and ElastiCache Redis (the worker's cache).

The VPC and its subnets are parameters (a deployment usually has them; docs/decisions/0015).
"""

from __future__ import annotations

from infra.cloudformation.intrinsics import NO_VALUE, Json, att, if_, ref, resource, sub, tags
from infra.environments import Environment

WORKER_PORT = 8080
REDIS_PORT = 6379
REDIS_URL = sub("rediss://${Cache.PrimaryEndPoint.Address}:${Cache.PrimaryEndPoint.Port}/0")


def _group(description: str, ingress: list[Json], component: str, env: Environment) -> Json:
    return resource(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": description,
            "VpcId": ref("VpcId"),
            "SecurityGroupIngress": ingress,
            "Tags": tags(component, env.name),
        },
    )


def _from_group(port: int, group: str, description: str) -> Json:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "SourceSecurityGroupId": att(group, "GroupId"),
        "Description": description,
    }


def network_resources(env: Environment) -> dict[str, Json]:
    """Logical id -> resource: security groups, load balancer, Redis."""
    listener_port = if_("HasCertificate", 443, 80)
    alb_ingress = {
        "IpProtocol": "tcp",
        "FromPort": listener_port,
        "ToPort": listener_port,
        "CidrIp": ref("AllowedCidr"),
        "Description": "clients of the recommender API",
    }
    return {
        "LoadBalancerSecurityGroup": _group(
            "streamrec worker load balancer", [alb_ingress], "worker", env
        ),
        "WorkerSecurityGroup": _group(
            "streamrec worker tasks",
            [_from_group(WORKER_PORT, "LoadBalancerSecurityGroup", "the load balancer")],
            "worker",
            env,
        ),
        "ConsumerSecurityGroup": _group("streamrec consumer tasks", [], "consumers", env),
        "TrainerSecurityGroup": _group("streamrec training task", [], "trainer", env),
        "CacheSecurityGroup": _group(
            "streamrec Redis cache",
            [
                _from_group(REDIS_PORT, "WorkerSecurityGroup", "the worker tasks"),
                _from_group(REDIS_PORT, "ConsumerSecurityGroup", "the consumers (invalidation)"),
            ],
            "cache",
            env,
        ),
        **_load_balancer(env),
        **_cache(env),
    }


def _load_balancer(env: Environment) -> dict[str, Json]:
    https = "HasCertificate"
    return {
        "LoadBalancer": resource(
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            {
                "Type": "application",
                "Scheme": "internet-facing",
                "Subnets": ref("PublicSubnetIds"),
                "SecurityGroups": [att("LoadBalancerSecurityGroup", "GroupId")],
                "LoadBalancerAttributes": [
                    {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}
                ],
                "Tags": tags("worker", env.name),
            },
        ),
        "WorkerTargetGroup": resource(
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            {
                "TargetType": "ip",
                "Protocol": "HTTP",
                "Port": WORKER_PORT,
                "VpcId": ref("VpcId"),
                "HealthCheckPath": "/healthz",
                "Matcher": {"HttpCode": "200"},
                "TargetGroupAttributes": [
                    {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}
                ],
                "Tags": tags("worker", env.name),
            },
        ),
        "WorkerListener": resource(
            "AWS::ElasticLoadBalancingV2::Listener",
            {
                "LoadBalancerArn": ref("LoadBalancer"),
                "Port": if_(https, 443, 80),
                "Protocol": if_(https, "HTTPS", "HTTP"),
                "Certificates": if_(https, [{"CertificateArn": ref("CertificateArn")}], NO_VALUE),
                "SslPolicy": if_(https, "ELBSecurityPolicy-TLS13-1-2-2021-06", NO_VALUE),
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref("WorkerTargetGroup")}],
            },
        ),
        # the worker's Prometheus /metrics is for the VPC (a scraper), not for the internet
        "HideMetricsRule": resource(
            "AWS::ElasticLoadBalancingV2::ListenerRule",
            {
                "ListenerArn": ref("WorkerListener"),
                "Priority": 1,
                "Conditions": [{"Field": "path-pattern", "Values": ["/metrics", "/metrics/*"]}],
                "Actions": [
                    {
                        "Type": "fixed-response",
                        "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
                    }
                ],
            },
        ),
    }


def _cache(env: Environment) -> dict[str, Json]:
    failover = env.cache_replicas > 0
    return {
        "CacheSubnetGroup": resource(
            "AWS::ElastiCache::SubnetGroup",
            {"Description": "streamrec Redis", "SubnetIds": ref("PrivateSubnetIds")},
        ),
        "Cache": resource(
            "AWS::ElastiCache::ReplicationGroup",
            {
                "ReplicationGroupDescription": "streamrec recommendation cache",
                "Engine": "redis",
                "EngineVersion": "7.1",
                "CacheNodeType": env.cache_node_type,
                "NumCacheClusters": 1 + env.cache_replicas,
                "AutomaticFailoverEnabled": failover,
                "MultiAZEnabled": failover,
                "Port": REDIS_PORT,
                "TransitEncryptionEnabled": True,
                "AtRestEncryptionEnabled": True,
                "CacheSubnetGroupName": ref("CacheSubnetGroup"),
                "SecurityGroupIds": [att("CacheSecurityGroup", "GroupId")],
                "Tags": tags("cache", env.name),
            },
        ),
    }
