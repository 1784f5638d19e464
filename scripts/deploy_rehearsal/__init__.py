"""Deploy rehearsal: the real CDK app bootstrapped, deployed and destroyed against a local moto server.

Run it through `scripts/deploy-rehearsal` (`make deploy-rehearsal`). Needs the project venv and the
pinned CDK CLI (`npm ci`); no AWS account, no Docker, no traffic beyond 127.0.0.1 (except the package
index when the uv cache lacks the function's wheels).

It deploys cdk.json's routes plus a FIFO route (so both queue shapes go through CloudFormation) with
the real asset bundling, then checks through the AWS APIs that what exists is what the configuration
says: queues, their encryption and redrive policy; the event source mapping (ReportBatchItemFailures,
batch size, concurrency); the function (runtime, handler, timeout, memory, environment exactly as
sqs_sagemaker_invoker.infra.config.function_environment produces it); its IAM policy (least privilege); the deployed code
(its zip holds functions/invoker and exactly the dependency versions of uv.lock). Then `cdk destroy`
and a check that the stack and its queues are gone. Exit status 1 on any mismatch.

moto's CloudFormation skips some resource types (alarms, queue/bucket/topic policies, saved queries)
and bucket lifecycle/public-access settings; the rehearsal lists what it skipped, and tests/infra
asserts those properties on the template.
"""
