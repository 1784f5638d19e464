"""Model containers that follow the SageMaker hosting contract (each runs as its own process)."""

# Container kind (EndpointSpec.container) -> module run as `python -m <module> --port 0`.
CONTAINER_MODULES = {
    "echo": "sqs_sagemaker_invoker.local.sagemaker.containers.echo",
    "sklearn": "sqs_sagemaker_invoker.local.sagemaker.containers.sklearn_classifier",
}
