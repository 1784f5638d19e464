"""A CDK app of your own: two invoker routes in a stack of their own, checked by cdk-nag.

Run it with `cdk synth --app "python construct_app.py"` (or make it your cdk.json's "app").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk

from sqs_sagemaker_invoker.infra.route_construct import SageMakerInvokerRoute

if TYPE_CHECKING:
    from constructs import Construct


class ScoringStack(cdk.Stack):
    """Your stack: the routes' queues, functions and alarms are named after it."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Ordered requests, results kept as objects in the route's bucket (route name: "orders").
        self.orders = SageMakerInvokerRoute(
            self,
            "Orders",
            endpoint_name="orders-model",
            fifo=True,
            results_queue=False,
            results_bucket=True,
        )
        # Bulk scoring in batches of up to 100, at most 50 concurrent function instances.
        self.bulk = SageMakerInvokerRoute(
            self,
            "BulkScoring",
            endpoint_name="bulk-scorer",
            batch_size=100,
            max_batching_window_seconds=5,
            max_concurrency=50,
            endpoint_calls_in_flight=32,
        )


def build(app: cdk.App) -> ScoringStack:
    stack = ScoringStack(app, "ScoringService")
    # cdk-nag's AwsSolutions checks at synth; the routes acknowledge their own findings with reasons.
    SageMakerInvokerRoute.add_nag_checks(app)
    return stack


if __name__ == "__main__":
    app = cdk.App()
    build(app)
    app.synth()
