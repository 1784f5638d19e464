"""The stack's dashboard and Logs Insights saved queries.

The dashboard's widgets are built by sqs_sagemaker_invoker/infra/dashboard.py (pure Python, shared with the local stack). The
function's logs are Powertools JSON lines with the fields
disposition, reason, request_id, message_id, endpoint, receive_count, latency_ms, original_status_code,
log_stream_arn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_logs as logs
from constructs import Construct

from sqs_sagemaker_invoker.infra import dashboard

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.route_construct import SageMakerInvokerRoute


@dataclass(frozen=True)
class MetricNames:
    namespace: str  # POWERTOOLS_METRICS_NAMESPACE
    service: str  # POWERTOOLS_SERVICE_NAME, a dimension of every metric


class Dashboard(Construct):
    """The dashboard of sqs_sagemaker_invoker/infra/dashboard.py, with the names CloudFormation knows only at deployment."""

    def __init__(self, scope: Construct, id: str, *, name: str, body: dict[str, Any]) -> None:
        super().__init__(scope, id)
        # "Resource", as the L2 Dashboard names its L1: the logical id stays the one deployed stacks have
        # (a new logical id for the same dashboard name would delete the dashboard after creating it).
        self.resource = cw.CfnDashboard(
            self, "Resource", dashboard_name=name, dashboard_body=cdk.Stack.of(self).to_json_string(body)
        )
        self.dashboard_name = self.resource.ref


def add_dashboard(
    scope: Construct, name: str, routes: list[SageMakerInvokerRoute], names: MetricNames
) -> Dashboard:
    body = dashboard.dashboard_body(
        [
            dashboard.DashboardRoute(
                route=route.config,
                request_queue_name=route.request_queue.queue_name,
                dead_letter_queue_name=route.dead_letter_queue.queue_name,
                function_name=route.function.function_name,
            )
            for route in routes
        ],
        namespace=names.namespace,
        service=names.service,
        region=cdk.Aws.REGION,
    )
    return Dashboard(scope, "Dashboard", name=name, body=body)


QUERY_DEAD_LETTERS = "dead-letters-by-reason"
QUERY_SLOWEST = "slowest-requests"
QUERY_ONE_REQUEST = "one-request"
REQUEST_ID_PLACEHOLDER = "REPLACE-WITH-REQUEST-ID"
SLOWEST_FIELDS = [
    "@timestamp", "endpoint", "request_id", "message_id", "latency_ms", "disposition", "reason", "receive_count",
]  # fmt: skip
ONE_REQUEST_FIELDS = [
    "@timestamp", "level", "message", "disposition", "reason", "endpoint", "request_id", "message_id",
    "receive_count", "latency_ms", "original_status_code", "log_stream_arn", "@logStream",
]  # fmt: skip


def add_queries(
    scope: Construct, stack_name: str, log_groups: list[logs.ILogGroup]
) -> list[logs.QueryDefinition]:
    # Names with "/" show as folders in the Logs Insights console.
    specs = {
        QUERY_DEAD_LETTERS: logs.QueryString(
            filter_statements=['disposition = "dead_letter"'],
            stats_statements=[
                "count(*) as dead_letters, latest(request_id) as last_request_id, "
                "latest(message_id) as last_message_id, latest(original_status_code) as last_status_code, "
                "latest(log_stream_arn) as last_model_log_stream by endpoint, reason"
            ],
            sort="dead_letters desc",
        ),
        QUERY_SLOWEST: logs.QueryString(
            fields=SLOWEST_FIELDS,
            filter_statements=["ispresent(latency_ms)"],
            sort="latency_ms desc",
            limit=100,
        ),
        QUERY_ONE_REQUEST: logs.QueryString(
            fields=ONE_REQUEST_FIELDS,
            filter_statements=[
                f'request_id = "{REQUEST_ID_PLACEHOLDER}" or message_id = "{REQUEST_ID_PLACEHOLDER}"'
            ],
            sort="@timestamp asc",
            limit=1000,
        ),
    }
    return [
        logs.QueryDefinition(
            scope,
            f"Query{''.join(p.capitalize() for p in key.split('-'))}",
            query_definition_name=f"{stack_name}/{key}",
            query_string=query,
            log_groups=log_groups,
        )
        for key, query in specs.items()
    ]
