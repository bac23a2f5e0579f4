"""ECS Fargate: the cluster, and a task definition, roles and log group per component.

Components run the one image (Dockerfile, entry point ``streamrec``): the consumers
``streamrec consume``, the worker ``streamrec serve`` behind the load balancer, the trainer
``streamrec train`` (scheduled in ``infra.cloudformation.jobs``). Each gets the settings'
resource names as ``STREAMREC_*`` variables, so the processes use what the template created.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.cloudformation import iam
from infra.cloudformation.intrinsics import Json, arn, att, ref, resource, sub, tags
from infra.cloudformation.network import REDIS_URL, WORKER_PORT
from infra.environments import Environment, Service
from infra.resources import Resources
from infra.settings import Settings

IMAGE = sub(
    "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${ImageRepository}:${ImageTag}"
)
REPOSITORY = arn("ecr", "repository/${ImageRepository}")
INGEST_SECRET = "IngestApiKey"


def settings_environment(settings: Settings) -> dict[str, object]:
    """The ``STREAMREC_*`` variables every component gets: the names the stack created."""
    return {
        "STREAMREC_REGION": ref("AWS::Region"),
        "STREAMREC_STREAM_NAME": settings.stream_name,
        "STREAMREC_FEATURES_TABLE": settings.features_table,
        "STREAMREC_CHECKPOINTS_TABLE": settings.checkpoints_table,
        "STREAMREC_BUCKET": settings.bucket,
        "STREAMREC_EVENTS_PREFIX": settings.events_prefix,
        "STREAMREC_DEAD_LETTER_PREFIX": settings.dead_letter_prefix,
        "STREAMREC_LAKE_ERRORS_PREFIX": settings.lake_errors_prefix,
        "STREAMREC_MODELS_PREFIX": settings.models_prefix,
        "STREAMREC_SERVING_MODEL": settings.serving_model,
        "STREAMREC_GLUE_DATABASE": settings.glue_database,
        "STREAMREC_GLUE_EVENTS_TABLE": settings.glue_events_table,
        "STREAMREC_APP_NAME": settings.app_name,
        "STREAMREC_LOG_FORMAT": "json",  # CloudWatch Logs Insights reads the fields
    }


@dataclass(frozen=True)
class Component:
    """One ECS component: its logical-id stem, command, size and what it may call."""

    stem: str  # "Consumer" -> ConsumerTaskDefinition, ConsumerTaskRole, ...
    command: list[str]
    size: Service
    statements: list[Json]
    variables: dict[str, object] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # variable -> secret logical id
    port: int | None = None
    stop_timeout: int = 30  # seconds between SIGTERM and SIGKILL


LANDER: Json = {"Fn::If": ["UseFirehose", "false", "true"]}


def components(settings: Settings, res: Resources, env: Environment) -> list[Component]:
    """The consumers, the worker and the trainer."""
    return [
        Component(
            "Consumer",
            ["consume"],
            env.consumers,
            iam.consumer_statements(res),
            # the feature processor bumps the users' cache generations (invalidation); the
            # lander stays off when a Firehose delivery stream writes the lake
            variables={"STREAMREC_REDIS_URL": REDIS_URL, "STREAMREC_LANDER": LANDER},
            stop_timeout=120,  # finish the batch, checkpoint, release the leases
        ),
        Component(
            "Worker",
            ["serve"],
            env.worker,
            iam.worker_statements(res),
            variables={
                "STREAMREC_API_HOST": "0.0.0.0",
                "STREAMREC_API_PORT": str(WORKER_PORT),
                "STREAMREC_REDIS_URL": REDIS_URL,
            },
            secrets={"STREAMREC_INGEST_API_KEYS": INGEST_SECRET},
            port=WORKER_PORT,
        ),
        Component(
            "Trainer",
            # the model the worker serves, registered and promoted if it beats the current one
            ["train", "--model", settings.serving_model, "--publish"],
            env.trainer,
            iam.trainer_statements(res),
            variables={"STREAMREC_PROMOTION_MARGIN": str(settings.promotion_margin)},
        ),
    ]


def compute_resources(settings: Settings, res: Resources, env: Environment) -> dict[str, Json]:
    """Logical id -> resource: cluster, secret, and each component's task and roles."""
    insights = "enabled" if env.container_insights else "disabled"
    out: dict[str, Json] = {
        "Cluster": resource(
            "AWS::ECS::Cluster",
            {
                "ClusterSettings": [{"Name": "containerInsights", "Value": insights}],
                "Tags": tags("cluster", env.name),
            },
        ),
        INGEST_SECRET: resource(
            "AWS::SecretsManager::Secret",
            {
                "Description": "API key of the worker's POST /events (STREAMREC_INGEST_API_KEYS)",
                "GenerateSecretString": {"PasswordLength": 40, "ExcludePunctuation": True},
                "Tags": tags("worker", env.name),
            },
        ),
    }
    base = settings_environment(settings)
    for component in components(settings, res, env):
        out |= _component(component, base, env)
    out |= _services(env)
    return out


def _component(c: Component, base: dict[str, object], env: Environment) -> dict[str, Json]:
    name = c.stem.lower()
    logs, task_role, execution_role = (
        f"{c.stem}LogGroup",
        f"{c.stem}TaskRole",
        f"{c.stem}ExecutionRole",
    )
    secret = next(iter(c.secrets.values()), None)
    container: Json = {
        "Name": name,
        "Image": IMAGE,
        "Command": c.command,
        "Essential": True,
        "StopTimeout": c.stop_timeout,
        "Environment": [{"Name": k, "Value": v} for k, v in (base | c.variables).items()],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": ref(logs),
                "awslogs-region": ref("AWS::Region"),
                "awslogs-stream-prefix": name,
            },
        },
    }
    if c.secrets:
        container["Secrets"] = [{"Name": k, "ValueFrom": ref(v)} for k, v in c.secrets.items()]
    if c.port is not None:
        container["PortMappings"] = [{"ContainerPort": c.port, "Protocol": "tcp"}]
    return {
        logs: resource("AWS::Logs::LogGroup", {"RetentionInDays": env.log_retention_days}),
        task_role: iam.role("ecs-tasks.amazonaws.com", c.statements, name, env.name),
        execution_role: iam.role(
            "ecs-tasks.amazonaws.com",
            iam.execution_statements(REPOSITORY, logs, secret),
            f"{name}-execution",
            env.name,
        ),
        f"{c.stem}TaskDefinition": resource(
            "AWS::ECS::TaskDefinition",
            {
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": str(c.size.cpu),
                "Memory": str(c.size.memory),
                "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
                "TaskRoleArn": att(task_role, "Arn"),
                "ExecutionRoleArn": att(execution_role, "Arn"),
                "ContainerDefinitions": [container],
                "Tags": tags(name, env.name),
            },
        ),
    }


def _network(group: str) -> Json:
    return {
        "AwsvpcConfiguration": {
            "Subnets": ref("PrivateSubnetIds"),
            "SecurityGroups": [att(group, "GroupId")],
            "AssignPublicIp": "DISABLED",
        }
    }


def _service(
    stem: str, count: int, env: Environment, more: Json | None = None, **attributes: object
) -> Json:
    properties: Json = {
        "Cluster": ref("Cluster"),
        "TaskDefinition": ref(f"{stem}TaskDefinition"),
        "LaunchType": "FARGATE",
        "DesiredCount": count,
        "NetworkConfiguration": _network(f"{stem}SecurityGroup"),
        "DeploymentConfiguration": {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}},
        "PropagateTags": "SERVICE",
        "Tags": tags(stem.lower(), env.name),
    }
    return resource("AWS::ECS::Service", properties | (more or {}), **attributes)


def _services(env: Environment) -> dict[str, Json]:
    worker = {
        "LoadBalancers": [
            {
                "ContainerName": "worker",
                "ContainerPort": WORKER_PORT,
                "TargetGroupArn": ref("WorkerTargetGroup"),
            }
        ],
        "HealthCheckGracePeriodSeconds": 60,
    }
    return {
        "ConsumerService": _service(
            "Consumer", env.consumers.count, env, Condition="UseEcsConsumers"
        ),
        "WorkerService": _service(
            "Worker", env.worker.count, env, worker, DependsOn=["WorkerListener"]
        ),
    }
