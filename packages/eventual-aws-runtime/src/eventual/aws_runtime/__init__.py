"""eventual.aws_runtime: the Lambda handlers and the AWS adapters of Eventual's runtime ports.

- :mod:`eventual.aws_runtime.names`: resource names, key schemas and environment variables
  (shared with eventual.cdk).
- :mod:`eventual.aws_runtime.adapters`: DynamoDB, SQS, S3, EventBridge, Scheduler, Lambda and
  CloudWatch Logs adapters.
- :mod:`eventual.aws_runtime.handlers`: ``orchestrator``, ``task``, ``command``, ``system``,
  ``subscription`` and ``timer`` modules, each with ``handler(event, context)``.
- :mod:`eventual.aws_runtime.testing`: ``AwsHarness``, moto plus Lambda's deliveries, for tests.

Importing this package loads nothing else.
"""
