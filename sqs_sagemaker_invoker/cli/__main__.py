"""`python -m sqs_sagemaker_invoker.cli`: the same as the `invoker` console script."""

from sqs_sagemaker_invoker.cli.main import app

app(prog_name="invoker")
