"""Where the commands act: a deployed stack (CloudFormation outputs) or the local stack (outputs.json).

Both targets are one dict of outputs with the keys of docs/design.md ("Stack outputs"); everything
after that (routes, clients) is the same code for both.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME, Env

from sqs_sagemaker_invoker.cli.errors import CliError, describe_aws_error, error_code, error_message
from sqs_sagemaker_invoker.infra.config import output_prefix
from sqs_sagemaker_invoker.infra.outputs_and_alarms import RouteOutput, StackOutput
from sqs_sagemaker_invoker.project import find_project_dir

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

STATE_DIR = ".local-stack"
OUTPUTS_FILE = "outputs.json"
LOCAL_CREDENTIALS = ("testing", "testing")
LOCAL_DEFAULT_REGION = "us-east-1"

_REQUEST_QUEUE_URL = RouteOutput.REQUEST_QUEUE_URL.value
_ROUTE_DESCRIPTION = re.compile(r"^route=([^;]+);")


@dataclass(frozen=True)
class Route:
    """One route's resources, from the outputs `{prefix}EndpointName`, `{prefix}RequestQueueUrl`, ..."""

    name: str
    prefix: str
    request_queue_url: str
    dead_letter_queue_url: str
    endpoint_name: str | None = None
    request_queue_arn: str | None = None
    results_queue_url: str | None = None
    results_bucket: str | None = None
    payload_s3_prefix: str | None = None
    function_name: str | None = None
    log_group_name: str | None = None
    ledger_table: str | None = None  # with ledger.enabled
    job_control_queue_url: str | None = None  # with jobs.enabled

    @property
    def fifo(self) -> bool:
        return self.request_queue_url.endswith(".fifo")

    @property
    def request_queue_name(self) -> str:
        return queue_name(self.request_queue_url)

    @property
    def dead_letter_queue_name(self) -> str:
        return queue_name(self.dead_letter_queue_url)


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def route_name_from_prefix(prefix: str) -> str:
    """ "RouteMyRoute" -> "my-route" (the inverse of sqs_sagemaker_invoker.infra.outputs_and_alarms.output_prefix, for display)."""
    pascal = prefix.removeprefix("Route")
    return re.sub(r"(?<!^)([A-Z])", r"-\1", pascal).lower()


def routes_from_outputs(outputs: Mapping[str, str], descriptions: Mapping[str, str]) -> list[Route]:
    routes: list[Route] = []
    for key in sorted(outputs):
        if not (key.startswith("Route") and key.endswith(_REQUEST_QUEUE_URL)):
            continue
        prefix = key.removesuffix(_REQUEST_QUEUE_URL)
        found = _ROUTE_DESCRIPTION.match(descriptions.get(key, ""))
        name = found.group(1).strip() if found else route_name_from_prefix(prefix)
        dlq = outputs.get(prefix + RouteOutput.DEAD_LETTER_QUEUE_URL)
        if not dlq:
            raise CliError(
                f"outputs name route {name!r} but have no {prefix}{RouteOutput.DEAD_LETTER_QUEUE_URL}"
            )
        routes.append(
            Route(
                name=name,
                prefix=prefix,
                request_queue_url=outputs[key],
                dead_letter_queue_url=dlq,
                endpoint_name=outputs.get(prefix + RouteOutput.ENDPOINT_NAME),
                request_queue_arn=outputs.get(prefix + RouteOutput.REQUEST_QUEUE_ARN),
                results_queue_url=outputs.get(prefix + RouteOutput.RESULTS_QUEUE_URL),
                results_bucket=outputs.get(prefix + RouteOutput.RESULTS_BUCKET_NAME),
                payload_s3_prefix=outputs.get(prefix + RouteOutput.PAYLOAD_S3_PREFIX),
                function_name=outputs.get(prefix + RouteOutput.FUNCTION_NAME),
                log_group_name=outputs.get(prefix + RouteOutput.LOG_GROUP_NAME),
                ledger_table=outputs.get(prefix + RouteOutput.LEDGER_TABLE_NAME),
                job_control_queue_url=outputs.get(prefix + RouteOutput.JOB_CONTROL_QUEUE_URL),
            )
        )
    return routes


@dataclass(frozen=True)
class FunctionInfo:
    log_group: str
    namespace: str
    service: str


@dataclass
class Target:
    kind: Literal["stack", "local"]
    label: str  # "stack X (region)" or "local stack (path)"
    outputs: dict[str, str]
    session: boto3.Session
    region: str
    endpoint_url: str | None = None
    stack_name: str | None = None
    descriptions: dict[str, str] = field(default_factory=dict)
    _clients: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    # -- routes -----------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        routes = routes_from_outputs(self.outputs, self.descriptions)
        if not routes:
            raise CliError(f"{self.label} has no invoker routes (no Route*RequestQueueUrl output)")
        return routes

    def route(self, name: str | None) -> Route:
        routes = self.routes()
        if name is None:
            if len(routes) == 1:
                return routes[0]
            names = ", ".join(r.name for r in routes)
            raise CliError(f"{self.label} has {len(routes)} routes ({names}); pick one with --route NAME")
        for route in routes:
            if name in (route.name, route.prefix) or output_prefix(name) == route.prefix:
                return route
        names = ", ".join(r.name for r in routes)
        raise CliError(f"unknown route {name!r}; the routes of {self.label} are: {names}")

    def selected_routes(self, name: str | None) -> list[Route]:
        return [self.route(name)] if name is not None else self.routes()

    @property
    def dashboard_name(self) -> str | None:
        return self.outputs.get(StackOutput.DASHBOARD_NAME)

    @property
    def alarm_topic_arn(self) -> str | None:
        return self.outputs.get(StackOutput.ALARM_TOPIC_ARN)

    def alarm_prefix(self, route: Route) -> str | None:
        # The stack names its alarms "<stack>-<route>-..."; the dashboard carries the stack's name too,
        # which is how the local stack (no CloudFormation) tells it.
        stack = self.stack_name or self.dashboard_name
        return f"{stack}-{route.name}-" if stack else None

    # -- clients ----------------------------------------------------------------------------------

    def client(self, service: str, *, attempts: int = 3) -> Any:
        key = (service, attempts)
        if key not in self._clients:
            config = Config(
                retries={"mode": "standard", "total_max_attempts": attempts},
                connect_timeout=5,
                read_timeout=40,  # long polls wait up to 20 s
                user_agent_extra="invoker-cli",
            )
            kwargs: dict[str, Any] = {"config": config}
            if self.endpoint_url is not None:
                kwargs["endpoint_url"] = self.endpoint_url
            self._clients[key] = self.session.client(service, **kwargs)  # type: ignore[call-overload]
        return self._clients[key]

    def sqs(self) -> SQSClient:
        client: SQSClient = self.client("sqs")
        return client

    def s3(self) -> S3Client:
        client: S3Client = self.client("s3")
        return client

    def cloudwatch(self, *, attempts: int = 3) -> CloudWatchClient:
        client: CloudWatchClient = self.client("cloudwatch", attempts=attempts)
        return client

    def logs(self, *, attempts: int = 3) -> CloudWatchLogsClient:
        client: CloudWatchLogsClient = self.client("logs", attempts=attempts)
        return client

    def function_info(self, route: Route) -> FunctionInfo:
        """The function's log group, metrics namespace and service name (defaults when unreadable)."""
        default_group = route.log_group_name or (
            f"/aws/lambda/{route.function_name}" if route.function_name else ""
        )
        info = FunctionInfo(default_group, DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME)
        if not route.function_name:
            return info
        client: LambdaClient = self.client("lambda", attempts=1)
        try:
            config = client.get_function_configuration(FunctionName=route.function_name)
        except (ClientError, BotoCoreError):
            # No permission or no Lambda (the local stack runs the handler itself): the defaults hold.
            return info
        env = config.get("Environment", {}).get("Variables", {})
        return FunctionInfo(
            log_group=config.get("LoggingConfig", {}).get("LogGroup") or default_group,
            namespace=env.get(Env.METRICS_NAMESPACE) or info.namespace,
            service=env.get(Env.SERVICE_NAME) or info.service,
        )

    def queue_arn(self, url: str) -> str:
        attributes = self.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]


# ------------------------------------------------------------------------------------------------
# Opening a target


def open_stack(name: str, *, profile: str | None, region: str | None) -> Target:
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        resolved_region = session.region_name
        if not resolved_region:
            raise CliError("no AWS region: pass --region or set AWS_REGION, or give the profile a region")
        cloudformation: CloudFormationClient = session.client(
            "cloudformation",
            config=Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5),
        )
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            raise CliError(
                f"unknown stack {name!r} in {region or 'the default region'} "
                f"(CloudFormation: {error_message(exc)})"
            ) from exc
        raise CliError(describe_aws_error(exc) or str(exc)) from exc
    except BotoCoreError as exc:
        raise CliError(describe_aws_error(exc) or str(exc)) from exc
    if not stacks:
        raise CliError(f"unknown stack {name!r}")
    stack = stacks[0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", []) if "OutputKey" in o}
    descriptions = {
        o["OutputKey"]: o.get("Description", "") for o in stack.get("Outputs", []) if "OutputKey" in o
    }
    target = Target(
        kind="stack",
        label=f"stack {stack.get('StackName', name)} ({resolved_region})",
        outputs=outputs,
        session=session,
        region=resolved_region,
        stack_name=stack.get("StackName", name),
        descriptions=descriptions,
    )
    if not routes_from_outputs(outputs, descriptions):
        status = stack.get("StackStatus", "?")
        raise CliError(f"stack {name!r} ({status}) has no invoker route outputs; is it an invoker stack?")
    return target


def find_local_outputs(local_dir: Path | None) -> Path:
    if local_dir is not None:
        path = local_dir if local_dir.suffix == ".json" else local_dir / OUTPUTS_FILE
        if not path.is_file():
            raise CliError(
                f"local stack not running: {path} does not exist (start it with `invoker local up`)"
            )
        return path
    searched: list[Path] = []
    for directory in [Path.cwd(), *Path.cwd().parents]:
        candidate = directory / STATE_DIR / OUTPUTS_FILE
        searched.append(candidate)
        if candidate.is_file():
            return candidate
    # The project named by INVOKER_PROJECT_DIR (never this package's install location).
    project = find_project_dir()
    if project is not None and (project / STATE_DIR / OUTPUTS_FILE).is_file():
        return project / STATE_DIR / OUTPUTS_FILE
    raise CliError(
        f"local stack not running: no {STATE_DIR}/{OUTPUTS_FILE} in {Path.cwd()} or its parents "
        "(start it with `invoker local up` or `make up`)"
    )


def open_local(local_dir: Path | None) -> Target:
    path = find_local_outputs(local_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"local stack state {path} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise CliError(f"local stack state {path} is not a JSON object of strings")
    endpoint = data.get("AwsEndpointUrl")
    if not endpoint:
        raise CliError(f"local stack state {path} has no AwsEndpointUrl")
    _check_listening(endpoint, path)
    region = LOCAL_DEFAULT_REGION
    for key, value in data.items():
        if key.endswith("RequestQueueArn") and value.count(":") >= 5:
            region = value.split(":")[3] or region
            break
    session = boto3.Session(
        aws_access_key_id=LOCAL_CREDENTIALS[0],
        aws_secret_access_key=LOCAL_CREDENTIALS[1],
        region_name=region,
    )
    return Target(
        kind="local",
        label=f"the local stack ({endpoint})",
        outputs=dict(data),
        session=session,
        region=region,
        endpoint_url=endpoint,
    )


def _check_listening(url: str, path: Path) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as exc:
        raise CliError(
            f"local stack not running: nothing answers at {url} (stale {path}; start it with `invoker local up`)"
        ) from exc


def open_target(
    *, stack: str | None, local: bool, local_dir: Path | None, profile: str | None, region: str | None
) -> Target:
    if stack and local:
        raise CliError("give either --stack NAME or --local, not both")
    if stack:
        return open_stack(stack, profile=profile, region=region)
    if local or local_dir is not None:
        return open_local(local_dir)
    raise CliError("no target: pass --stack NAME (a deployed stack) or --local (the local stack)")
