"""sqs-sagemaker-invoker: the `invoker` command line (`cli`), the CDK constructs (`infra`) and the
embedded local stack (`local`). The Lambda function itself is the separate package `invoker`
(functions/invoker), which imports nothing from here."""
