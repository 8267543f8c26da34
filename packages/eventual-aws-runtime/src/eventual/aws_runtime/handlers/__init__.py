"""The Lambda handlers: ``eventual.aws_runtime.handlers.<kind>.handler(event, context)``.

| module | trigger |
|---|---|
| ``orchestrator`` | SQS FIFO execution queue (partial batch responses) |
| ``task`` | Lambda asynchronous invoke from the orchestrator |
| ``command`` | API Gateway HTTP API (payload format 2.0): commands and routes |
| ``system`` | API Gateway HTTP API, IAM-authorised: ``/rpc/_system/*`` |
| ``subscription`` | EventBridge rule (one per subscription) |
| ``timer`` | SQS timer queue (delayed messages and Scheduler targets) |

Importing a handler module loads only the standard library.
"""
