"""The AWS calls a handler makes, as the IAM requests AWS authorizes them as.

- :func:`iam_requests` turns one API call (service, operation, parameters) into the IAM
  requests AWS authorizes for it: ``dynamodb:PutItem`` on the table's ARN, one request per
  item of a ``TransactWriteItems``, ``iam:PassRole`` for a schedule's target role...
- :class:`CallRecorder` hooks a ``boto3.Session`` (``before-parameter-build``) and records
  each call under the principal that is making it (the deliverer sets it around each handler
  invocation), plus the calls AWS services make with a role on a function's behalf (the event
  source mapping's polling, Scheduler's delivery, an EventBridge target's role).

They are checked against the roles' policies by :mod:`eventual.aws_runtime.testing_iam`.
Test support only (no moto needed here; boto3 for the hooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

# ---------------------------------------------------------------- IAM requests of an API call


@dataclass(frozen=True)
class IamRequest:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Call:
    """One authorized request: who (a principal: a role's ARN), what, on which resource; ``by``
    names the AWS service that made it with the role (``""``: the function's own code)."""

    principal: str
    action: str
    resource: str
    operation: str  # "dynamodb.TransactWriteItems"
    context: tuple[tuple[str, str], ...] = ()
    by: str = ""


def queue_arn(url_or_name: str, region: str, account: str) -> str:
    if url_or_name.startswith("arn:"):
        return url_or_name
    path = urlparse(url_or_name).path if "://" in url_or_name else url_or_name
    parts = [p for p in path.split("/") if p]
    name = parts[-1]
    owner = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else account
    return f"arn:aws:sqs:{region}:{owner}:{name}"


def _table_arn(name: str, region: str, account: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def _log_group_arn(name: str, region: str, account: str) -> str:
    # IAM's ARN of a log group (what log-group-level actions are authorized on) ends in ":*".
    return f"arn:aws:logs:{region}:{account}:log-group:{name}:*"


def _log_stream_arn(group: str, stream: str, region: str, account: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}"


def iam_requests(
    service: str, operation: str, params: Mapping[str, Any], region: str, account: str
) -> list[IamRequest]:
    """The IAM requests one call of ``operation`` on ``service`` (its signing name: ``dynamodb``,
    ``sqs``, ``s3``, ``events``, ``lambda``, ``scheduler``, ``logs``...) is authorized as.
    Raises ``KeyError`` for an operation this table does not know (add it)."""
    p = params
    r: list[IamRequest] = []

    def add(action: str, resource: str, **ctx: str) -> None:
        r.append(IamRequest(action, resource, tuple(sorted(ctx.items()))))

    if service == "dynamodb":
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"):
            arn = _table_arn(p["TableName"], region, account)
            if p.get("IndexName"):
                arn += f"/index/{p['IndexName']}"
            add(f"dynamodb:{operation}", arn)
        elif operation == "TransactWriteItems":
            # Authorized per item as the underlying write (there is no TransactWriteItems action).
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
            }
            for item in p["TransactItems"]:
                for kind, action in kinds.items():
                    if kind in item:
                        add(
                            f"dynamodb:{action}",
                            _table_arn(item[kind]["TableName"], region, account),
                        )
        elif operation == "TransactGetItems":
            for item in p["TransactItems"]:
                add("dynamodb:GetItem", _table_arn(item["Get"]["TableName"], region, account))
        elif operation in ("BatchGetItem", "BatchWriteItem"):
            for table in p["RequestItems"]:
                add(f"dynamodb:{operation}", _table_arn(table, region, account))
        elif operation in ("DescribeTable",):
            add(f"dynamodb:{operation}", _table_arn(p["TableName"], region, account))
        else:
            raise KeyError(f"dynamodb.{operation}")
    elif service == "sqs":
        single = {
            "SendMessage": "SendMessage",
            "SendMessageBatch": "SendMessage",
            "ReceiveMessage": "ReceiveMessage",
            "DeleteMessage": "DeleteMessage",
            "DeleteMessageBatch": "DeleteMessage",
            "ChangeMessageVisibility": "ChangeMessageVisibility",
            "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
            "GetQueueAttributes": "GetQueueAttributes",
        }
        if operation in single:
            add(f"sqs:{single[operation]}", queue_arn(p["QueueUrl"], region, account))
        elif operation == "GetQueueUrl":
            owner = p.get("QueueOwnerAWSAccountId") or account
            add("sqs:GetQueueUrl", f"arn:aws:sqs:{region}:{owner}:{p['QueueName']}")
        else:
            raise KeyError(f"sqs.{operation}")
    elif service == "s3":
        objects = {"GetObject": "GetObject", "HeadObject": "GetObject", "PutObject": "PutObject"}
        if operation in objects:
            add(f"s3:{objects[operation]}", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}")
        elif operation == "DeleteObject":
            add("s3:DeleteObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}")
        elif operation in ("ListObjectsV2", "ListObjects"):
            prefix = {"s3:prefix": p.get("Prefix", "")}
            add("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", **prefix)
        elif operation == "CopyObject":
            # Read of the source, write of the target, and its tags when the copy sets them.
            source = p["CopySource"]
            if isinstance(source, str):
                source_arn = f"arn:aws:s3:::{source.lstrip('/').split('?', 1)[0]}"
            else:
                source_arn = f"arn:aws:s3:::{source['Bucket']}/{source['Key']}"
            add("s3:GetObject", source_arn)
            target = f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"
            add("s3:PutObject", target)
            if p.get("Tagging") and p.get("TaggingDirective") == "REPLACE":
                add("s3:PutObjectTagging", target)
        else:
            raise KeyError(f"s3.{operation}")
    elif service == "events":
        if operation == "PutEvents":
            for entry in p["Entries"]:
                bus = entry.get("EventBusName") or "default"
                if not bus.startswith("arn:"):
                    bus = f"arn:aws:events:{region}:{account}:event-bus/{bus}"
                add("events:PutEvents", bus)
        else:
            raise KeyError(f"events.{operation}")
    elif service == "lambda":
        if operation == "Invoke":
            fn = p["FunctionName"]
            if not fn.startswith("arn:"):
                fn = f"arn:aws:lambda:{region}:{account}:function:{fn}"
            add("lambda:InvokeFunction", fn)
        else:
            raise KeyError(f"lambda.{operation}")
    elif service == "scheduler":
        if operation in ("CreateSchedule", "UpdateSchedule", "DeleteSchedule", "GetSchedule"):
            group = p.get("GroupName") or "default"
            add(
                f"scheduler:{operation}",
                f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{p['Name']}",
            )
            role = (p.get("Target") or {}).get("RoleArn")
            if role and operation in ("CreateSchedule", "UpdateSchedule"):
                add("iam:PassRole", role, **{"iam:PassedToService": "scheduler.amazonaws.com"})
        else:
            raise KeyError(f"scheduler.{operation}")
    elif service == "logs":
        group = p.get("logGroupName", "")
        if operation in ("CreateLogStream", "PutLogEvents"):
            add(f"logs:{operation}", _log_stream_arn(group, p["logStreamName"], region, account))
        elif operation in ("FilterLogEvents", "DescribeLogStreams", "GetLogEvents"):
            add(f"logs:{operation}", _log_group_arn(group, region, account))
        else:
            raise KeyError(f"logs.{operation}")
    elif service == "ssm":
        if operation == "GetParameter":
            name = p["Name"]
            add("ssm:GetParameter", f"arn:aws:ssm:{region}:{account}:parameter{name}")
        else:
            raise KeyError(f"ssm.{operation}")
    else:
        raise KeyError(f"{service}.{operation}")
    return r


class CallRecorder:
    """Records every call made through ``session`` as :class:`Call` s of :attr:`principal`.

    ``with recorder.acting_as(role_arn): handler(...)`` attributes the calls to that role; a
    call made while :attr:`principal` is ``None`` is not recorded (``""``: recorded as nobody's,
    so it shows up as denied). A recorder made with ``by`` records the calls an AWS service
    makes with the role (``Call.by``).
    Operations :func:`iam_requests` does not know land in :attr:`unknown`."""

    def __init__(self, region: str, account: str, *, by: str = "") -> None:
        self.region = region
        self.account = account
        self.by = by
        self.principal: str | None = None
        self.calls: list[Call] = []
        self.unknown: list[tuple[str, str]] = []

    def attach(self, session: Any) -> None:
        session.events.register("before-parameter-build", self._before_parameter_build)

    def _before_parameter_build(self, params: Any = None, model: Any = None, **_: Any) -> None:
        if model is None:
            return
        if self.principal is None:
            return
        service = model.service_model.signing_name or model.service_model.endpoint_prefix
        self.record(self.principal, service, model.name, params or {})

    def record(
        self, principal: str, service: str, operation: str, params: Mapping[str, Any]
    ) -> None:
        try:
            requests = iam_requests(service, operation, params, self.region, self.account)
        except KeyError:
            self.unknown.append((principal, f"{service}.{operation}"))
            return
        for req in requests:
            self.calls.append(
                Call(
                    principal,
                    req.action,
                    req.resource,
                    f"{service}.{operation}",
                    req.context,
                    by=self.by,
                )
            )

    def acting_as(self, principal: str | None) -> _Acting:
        return _Acting(self, principal)


class _Acting:
    def __init__(self, recorder: CallRecorder, principal: str | None) -> None:
        self.recorder = recorder
        self.principal = principal
        self.previous: str | None = None

    def __enter__(self) -> None:
        self.previous, self.recorder.principal = self.recorder.principal, self.principal

    def __exit__(self, *exc: object) -> None:
        self.recorder.principal = self.previous


__all__ = ["Call", "CallRecorder", "IamRequest", "iam_requests", "queue_arn"]
