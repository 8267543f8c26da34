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

FUNCTION_ENVIRONMENT: dict[str, str] = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
"""Variables a function running these handlers gets (``eventual.cdk`` sets them before the
user's own ``environment``, which may set them otherwise):

- ``PYDANTIC_DISABLE_PLUGINS=__all__``: pydantic looks for plugins on the first model it
  builds by reading the entry points of every installed distribution; a Lambda bundle has no
  pydantic plugin, so that scan is skipped. A service that uses one (logfire's...) sets
  ``PYDANTIC_DISABLE_PLUGINS=""``.
"""
