"""``python -m sqs_sagemaker_invoker.local demo``: the whole pipeline on one machine, with faults, proving nothing is lost.

It starts the local stack (moto, the SageMaker Runtime emulator with the scikit-learn example model, the
event source emulator running the real function), sends a mixed workload while the model is still loading
(not-ready phase), then throttles the endpoint and makes it fail transiently for a few seconds, and reads
every outcome back: results from the results queue, dead letters with their reasons from the DLQ, retries
from the function's metrics in the local CloudWatch. It exits 0 only when every request has exactly one
final place, the one its kind calls for; repeated results (at-least-once delivery) are reported apart.

Modules: ``workload`` (the requests and their pacing), ``phases`` (the endpoint's faults over time),
``readback`` (outcomes from the queues), ``report`` (the verdict and its table), ``runner`` (the demo).

``scaling_scenario`` (``demo --scenario scaling``) reuses them for a burst at an endpoint with no copies that
the local autoscaler scales out and back to zero; ``chart`` draws its capacity and backlog over time.
"""

from sqs_sagemaker_invoker.local.demo.config import DemoConfig, ScalingDemoConfig
from sqs_sagemaker_invoker.local.demo.runner import Demo
from sqs_sagemaker_invoker.local.demo.scaling_scenario import ScalingDemo

__all__ = ["Demo", "DemoConfig", "ScalingDemo", "ScalingDemoConfig"]
