"""A route's jobs on the local stack (cdk.json `jobs.enabled`): the control queue and its DLQ in moto, and
the splitter/assembler function run by the event source emulator from that queue (batch size 1), with
the environment the CDK app gives it (sqs_sagemaker_invoker.infra.config.jobs_function_environment)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Protocol

import boto3

from sqs_sagemaker_invoker.infra.config import jobs_function_environment, queue_name
from sqs_sagemaker_invoker.infra.outputs_and_alarms import RouteOutput, route_output_key
from sqs_sagemaker_invoker.local.aws import _queue, client_kwargs
from sqs_sagemaker_invoker.local.esm import EventSourceSpec

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.config import AppConfig, RouteConfig
    from sqs_sagemaker_invoker.local.aws import RouteResources
    from sqs_sagemaker_invoker.local.stand_ins import MotoServer
    from sqs_sagemaker_invoker.local.worker import FunctionSpec

JOBS_HANDLER = "invoker.jobs.handler.lambda_handler"
CONTROL_MAX_RECEIVE_COUNT = 5  # as deployed (infra.jobs_function)


@dataclasses.dataclass(frozen=True)
class JobResources:
    control_queue_url: str
    control_queue_arn: str
    function_name: str

    def outputs(self, route: str) -> dict[str, str]:
        return {
            route_output_key(route, RouteOutput.JOB_CONTROL_QUEUE_URL): self.control_queue_url,
            route_output_key(route, RouteOutput.JOB_FUNCTION_NAME): self.function_name,
        }


def create_job_resources(app: AppConfig, resources: RouteResources, endpoint_url: str) -> JobResources:
    route = resources.route
    sqs = boto3.client("sqs", **client_kwargs(endpoint_url))
    _dlq_url, dlq_arn = _queue(sqs, queue_name(app.stack_name, route.name, "jobs-dlq", fifo=False), {})
    url, arn = _queue(
        sqs,
        queue_name(app.stack_name, route.name, "jobs", fifo=False),
        {
            "VisibilityTimeout": str(2 * route.jobs.timeout_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": CONTROL_MAX_RECEIVE_COUNT}
            ),
        },
    )
    return JobResources(url, arn, f"{resources.function_name}-jobs")


def job_event_source(
    app: AppConfig, resources: RouteResources, jobs: JobResources, function: FunctionSpec, moto_url: str
) -> EventSourceSpec:
    """The control queue's mapping: the route function's worker settings, the job handler and its own
    environment (plus the local endpoints: moto for S3, SQS, DynamoDB and EventBridge)."""
    route = resources.route
    assert resources.results_bucket is not None
    assert resources.ledger_table is not None
    environment = {
        key: value for key, value in function.environment.items() if key.startswith(("AWS_", "POWERTOOLS_"))
    }
    environment.update(
        jobs_function_environment(
            route,
            request_queue_url=resources.request_queue_url,
            control_queue_url=jobs.control_queue_url,
            bucket=resources.results_bucket,
            ledger_table=resources.ledger_table,
            service=app.service_name,
            capacity_table=resources.capacity_table,
            capacity_key=resources.capacity_key,
            payload_s3_prefix=resources.payload_s3_prefix,
        )
    )
    environment["AWS_ENDPOINT_URL_EVENTBRIDGE"] = moto_url
    environment["AWS_ENDPOINT_URL_DYNAMODB"] = moto_url
    spec = dataclasses.replace(
        function,
        name=jobs.function_name,
        handler=JOBS_HANDLER,
        environment=environment,
        timeout_s=route.jobs.timeout_seconds,
    )
    return EventSourceSpec(
        name=f"{route.name}-jobs",
        queue_url=jobs.control_queue_url,
        queue_arn=jobs.control_queue_arn,
        function=spec,
        batch_size=1,
        max_concurrency=2,
        report_batch_item_failures=True,
    )


class _Stack(Protocol):
    """What these helpers read of the local stack (a protocol: the stack imports this module)."""

    app: AppConfig
    routes: dict[str, RouteResources]
    jobs: dict[str, JobResources]
    moto: MotoServer

    def function_spec(self, route: RouteConfig) -> FunctionSpec: ...


def job_event_sources(stack: _Stack) -> list[EventSourceSpec]:
    """One control-queue mapping per route with jobs."""
    assert stack.moto.url is not None
    return [
        job_event_source(
            stack.app, stack.routes[name], jobs, stack.function_spec(stack.routes[name].route), stack.moto.url
        )
        for name, jobs in stack.jobs.items()
    ]


def create_all_job_resources(stack: _Stack) -> dict[str, JobResources]:
    assert stack.moto.url is not None
    return {
        route.name: create_job_resources(stack.app, stack.routes[route.name], stack.moto.url)
        for route in stack.app.routes
        if route.jobs.enabled
    }


def job_outputs(stack: _Stack) -> dict[str, str]:
    return {key: value for name, jobs in stack.jobs.items() for key, value in jobs.outputs(name).items()}
