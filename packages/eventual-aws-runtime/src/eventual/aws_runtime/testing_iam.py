"""Permissions as exercised: every AWS call a handler makes, checked against its role's policies.

- :class:`Policy` is a small IAM evaluator: Allow/Deny statements, ``Action``/``NotAction``,
  ``Resource``/``NotResource`` with ``*`` and ``?`` wildcards, and the few condition operators
  the construct uses (``StringEquals``, ``StringLike``, ``ArnLike``, ``ArnEquals``).
- :class:`TemplateResolver` resolves ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub`` and
  ``Fn::ImportValue`` of a template against a deployed stack's physical ids, and
  :func:`role_policies` collects a role's statements from the template.
- :func:`service_actions` lists, from a template, what AWS services do with a role on its
  behalf and which resource makes them (Lambda writing a function's logs and dead-lettering
  its failed asynchronous invocations, an SQS event source mapping polling its queue,
  EventBridge Scheduler delivering a schedule, an EventBridge rule putting events on a
  target bus): the only calls a harness may make as an AWS service (``Call.by``).
- :func:`check_calls` evaluates recorded calls against their principals' policies: the
  denied calls, the grants no call used, the wildcard actions, and any call made as an AWS
  service that no :class:`ServiceAction` explains (a :class:`PermissionReport`).

The calls are recorded by :mod:`eventual.aws_runtime.testing_calls` (its names are
importable from here too). Test support only (no moto needed here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import names as n
from .testing_calls import Call, CallRecorder, IamRequest, iam_requests, queue_arn

# ---------------------------------------------------------------- the evaluator


def _wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def action_matches(pattern: str, action: str) -> bool:
    """IAM actions compare case-insensitively, with ``*`` and ``?`` wildcards."""
    return _wildcard(pattern, ignore_case=True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    return _wildcard(pattern).fullmatch(resource) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    sid: str = ""
    source: str = ""  # the policy's logical id

    @classmethod
    def from_json(cls, s: Mapping[str, Any], source: str = "") -> Statement:
        conds = []
        for op, entries in (s.get("Condition") or {}).items():
            for key, values in entries.items():
                conds.append((op, key, tuple(str(v) for v in _as_list(values))))
        return cls(
            effect=s["Effect"],
            actions=tuple(_as_list(s.get("Action"))),
            not_actions=tuple(_as_list(s.get("NotAction"))),
            resources=tuple(_as_list(s.get("Resource"))),
            not_resources=tuple(_as_list(s.get("NotResource"))),
            conditions=tuple(conds),
            sid=s.get("Sid", ""),
            source=source,
        )

    def matches_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(action_matches(a, action) for a in self.not_actions)
        return any(action_matches(a, action) for a in self.actions)

    def matching_resource(self, resource: str) -> str | None:
        """The ``Resource`` pattern that covers ``resource`` (or ``"NotResource"``)."""
        if self.not_resources:
            if any(resource_matches(r, resource) for r in self.not_resources):
                return None
            return "NotResource"
        for r in self.resources:
            if resource_matches(r, resource):
                return r
        return None

    def conditions_hold(self, context: Mapping[str, str]) -> bool:
        for op, key, values in self.conditions:
            if_exists = op.endswith("IfExists")
            base = op[: -len("IfExists")] if if_exists else op
            if key not in context:
                if if_exists:
                    continue
                return False
            actual = context[key]
            if base in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif base == "StringEqualsIgnoreCase":
                ok = actual.lower() in {v.lower() for v in values}
            elif base in ("StringLike", "ArnLike"):
                ok = any(resource_matches(v, actual) for v in values)
            elif base in ("StringNotEquals", "ArnNotEquals"):
                ok = actual not in values
            elif base == "Bool":
                ok = actual.lower() in {v.lower() for v in values}
            else:
                raise ValueError(f"condition operator {op} is not supported by this evaluator")
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    by: tuple[tuple[Statement, str, str], ...] = ()  # (statement, action pattern, resource pattern)
    denied_by: Statement | None = None


@dataclass
class Policy:
    """The statements of one principal (all its policies together)."""

    statements: list[Statement] = field(default_factory=list)

    def evaluate(self, action: str, resource: str, context: Mapping[str, str] = {}) -> Decision:
        allows: list[tuple[Statement, str, str]] = []
        for s in self.statements:
            if not s.matches_action(action):
                continue
            pattern = s.matching_resource(resource)
            if pattern is None or not s.conditions_hold(context):
                continue
            if s.effect == "Deny":
                return Decision(False, denied_by=s)
            action_pattern = next((a for a in s.actions if action_matches(a, action)), "NotAction")
            allows.append((s, action_pattern, pattern))
        return Decision(bool(allows), by=tuple(allows))

    def grants(self) -> list[tuple[Statement, str, str]]:
        """Every (statement, action, resource) an Allow statement grants."""
        return [
            (s, a, r)
            for s in self.statements
            if s.effect == "Allow"
            for a in (s.actions or ("NotAction",))
            for r in (s.resources or ("NotResource",))
        ]


# ---------------------------------------------------------------- template resolution


class TemplateResolver:
    """Resolves a template's intrinsic functions against the deployed stack.

    ``physical`` maps logical ids to (resource type, physical id) as ``DescribeStackResources``
    returns them; ``exports`` maps export names to values (``ListExports``)."""

    def __init__(
        self,
        physical: Mapping[str, tuple[str, str]],
        *,
        region: str,
        account: str,
        stack_name: str,
        exports: Mapping[str, str] | None = None,
        stack_id: str = "",
    ) -> None:
        self.physical = physical
        self.region = region
        self.account = account
        self.stack_name = stack_name
        self.stack_id = stack_id
        self.exports = dict(exports or {})

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
        }
        if name in pseudo:
            return pseudo[name]
        return self.physical[name][1]

    def get_att(self, name: str, attribute: str) -> str:
        kind, pid = self.physical[name]
        r, a = self.region, self.account
        if attribute == "Arn":
            if pid.startswith("arn:"):
                return pid
            arns: dict[str, Callable[[], str]] = {
                "AWS::DynamoDB::Table": lambda: f"arn:aws:dynamodb:{r}:{a}:table/{pid}",
                "AWS::SQS::Queue": lambda: queue_arn(pid, r, a),
                "AWS::S3::Bucket": lambda: f"arn:aws:s3:::{pid}",
                "AWS::Lambda::Function": lambda: f"arn:aws:lambda:{r}:{a}:function:{pid}",
                "AWS::IAM::Role": lambda: f"arn:aws:iam::{a}:role/{pid}",
                "AWS::Events::EventBus": lambda: f"arn:aws:events:{r}:{a}:event-bus/{pid}",
                "AWS::Logs::LogGroup": lambda: f"arn:aws:logs:{r}:{a}:log-group:{pid}:*",
                "AWS::Scheduler::ScheduleGroup": lambda: (
                    f"arn:aws:scheduler:{r}:{a}:schedule-group/{pid}"
                ),
                "AWS::Events::Rule": lambda: f"arn:aws:events:{r}:{a}:rule/{pid}",
            }
            if kind in arns:
                return arns[kind]()
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return pid.rstrip("/").rsplit("/", 1)[-1]
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return pid
        if attribute == "Name":
            return pid
        raise KeyError(f"Fn::GetAtt {name}.{attribute} ({kind}) is not known to this resolver")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                variables = {k: self.resolve(v) for k, v in variables.items()}

                def sub(m: re.Match[str]) -> str:
                    name = m.group(1)
                    if name in variables:
                        return str(variables[name])
                    if "." in name:
                        return self.get_att(*name.split(".", 1))
                    return self.ref(name)

                return re.sub(r"\$\{([^!}][^}]*)\}", sub, text)
            if key == "Fn::ImportValue":
                return self.exports[self.resolve(arg)]
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
        return {k: self.resolve(v) for k, v in value.items()}


def role_policies(template: Mapping[str, Any], role: str, resolver: TemplateResolver) -> Policy:
    """Every statement the template attaches to ``role`` (a logical id): ``AWS::IAM::Policy``
    and ``AWS::IAM::ManagedPolicy`` resources naming it, and the role's inline policies.
    An AWS-managed policy (``ManagedPolicyArns``) cannot be read offline: it is refused."""
    resources = template["Resources"]
    statements: list[Statement] = []
    props = resources[role].get("Properties", {})
    if props.get("ManagedPolicyArns"):
        raise ValueError(
            f"role {role} has managed policies {props['ManagedPolicyArns']}: this evaluator "
            "reads only the policies in the template"
        )
    for inline in props.get("Policies", []):
        doc = resolver.resolve(inline["PolicyDocument"])
        statements += [
            Statement.from_json(s, f"{role}.{inline['PolicyName']}") for s in doc["Statement"]
        ]
    for logical, resource in resources.items():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        p = resource.get("Properties", {})
        if not any(r == {"Ref": role} for r in p.get("Roles", [])):
            continue
        doc = resolver.resolve(p["PolicyDocument"])
        statements += [Statement.from_json(s, logical) for s in _as_list(doc["Statement"])]
    return Policy(statements)


# ---------------------------------------------------------------- what AWS does with a role

# What Lambda's SQS event source mapping does with the function's role: it polls the queue,
# deletes the messages the function processed and reads the queue's attributes. These three
# are what the execution role needs for an SQS trigger (Amazon SQS Developer Guide,
# "Configuring an Amazon SQS queue to trigger an AWS Lambda function"); a mapping with
# ReportBatchItemFailures leaves failed messages to their visibility timeout.
EVENT_SOURCE_MAPPING_SQS_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)

# What Lambda does with a function's role for its logs (the AWSLambdaBasicExecutionRole
# actions, on the log group that already exists): a stream per execution environment, the
# invocations' lines.
LAMBDA_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


@dataclass(frozen=True)
class ServiceAction:
    """An action an AWS service takes with ``principal`` (a role's ARN) on its behalf, on
    ``resource`` (an ARN or pattern), and the template resource that makes it (``because``)."""

    principal: str
    action: str
    resource: str
    because: str

    def covers(self, call: Call) -> bool:
        return (
            call.principal == self.principal
            and action_matches(self.action, call.action)
            and resource_matches(self.resource, call.resource)
        )


def service_actions(template: Mapping[str, Any], resolver: TemplateResolver) -> list[ServiceAction]:
    """What AWS services do with the template's roles, derived from its resources:

    - each ``AWS::Lambda::Function``: Lambda writes its logs (:data:`LAMBDA_LOG_ACTIONS` on its
      ``LoggingConfig`` log group, else ``/aws/lambda/{name}``) and sends an asynchronous
      invocation that failed past its retries to its ``DeadLetterConfig`` queue
      (``sqs:SendMessage``); a function whose environment names a scheduler role and a timer
      queue creates schedules that EventBridge Scheduler delivers to that queue with that role
      (``sqs:SendMessage``);
    - each SQS ``AWS::Lambda::EventSourceMapping``: the mapping polls the queue with the
      function's role (:data:`EVENT_SOURCE_MAPPING_SQS_ACTIONS`);
    - each ``AWS::Events::Rule`` target with a ``RoleArn`` on an event bus: EventBridge puts
      the rule's events there with that role (``events:PutEvents``)."""
    resources = template["Resources"]
    region, account = resolver.region, resolver.account

    def role_arn(value: Any) -> str:
        arn = str(resolver.resolve(value))
        return arn if arn.startswith("arn:") else f"arn:aws:iam::{account}:role/{arn}"

    out: list[ServiceAction] = []
    roles: dict[str, str] = {}  # function logical id -> its role's ARN
    for logical, r in resources.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        props = r.get("Properties", {})
        role = role_arn(props["Role"])
        roles[logical] = role
        group = (props.get("LoggingConfig") or {}).get("LogGroup")
        group = str(resolver.resolve(group)) if group else f"/aws/lambda/{resolver.ref(logical)}"
        streams = f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:*"
        for action in LAMBDA_LOG_ACTIONS:
            out.append(ServiceAction(role, action, streams, f"{logical}: Lambda writes its logs"))
        dlq = (props.get("DeadLetterConfig") or {}).get("TargetArn")
        if dlq:
            out.append(
                ServiceAction(
                    role,
                    "sqs:SendMessage",
                    str(resolver.resolve(dlq)),
                    f"{logical}: Lambda dead-letters an asynchronous invocation that failed "
                    "past its retries (DeadLetterConfig)",
                )
            )
        env = (props.get("Environment") or {}).get("Variables") or {}
        if n.ENV_SCHEDULER_ROLE_ARN in env and n.ENV_TIMER_QUEUE_ARN in env:
            scheduler = ServiceAction(
                role_arn(env[n.ENV_SCHEDULER_ROLE_ARN]),
                "sqs:SendMessage",
                str(resolver.resolve(env[n.ENV_TIMER_QUEUE_ARN])),
                "EventBridge Scheduler delivers the schedules the functions create (their "
                f"{n.ENV_SCHEDULER_ROLE_ARN} and {n.ENV_TIMER_QUEUE_ARN})",
            )
            if scheduler not in out:
                out.append(scheduler)
    for logical, r in resources.items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            queue = str(resolver.resolve(props["EventSourceArn"]))
            function = props["FunctionName"]
            target = function.get("Ref") if isinstance(function, dict) else None
            if not queue.startswith("arn:aws:sqs:") or target not in roles:
                continue
            for action in EVENT_SOURCE_MAPPING_SQS_ACTIONS:
                out.append(
                    ServiceAction(
                        roles[target], action, queue, f"{logical}: the SQS event source mapping"
                    )
                )
        elif r["Type"] == "AWS::Events::Rule":
            for t in props.get("Targets", []):
                arn = str(resolver.resolve(t["Arn"]))
                if "RoleArn" in t and ":event-bus/" in arn:
                    out.append(
                        ServiceAction(
                            role_arn(t["RoleArn"]),
                            "events:PutEvents",
                            arn,
                            f"{logical}: EventBridge puts the rule's events on its target bus",
                        )
                    )
    return out


# ---------------------------------------------------------------- the report


@dataclass
class PermissionReport:
    denied: list[Call]
    unused: list[tuple[str, str, str, str]]  # (principal label, sid, action, resource pattern)
    wildcard_actions: list[tuple[str, str, str]]  # (principal label, sid, action)
    used: dict[str, set[tuple[str, str]]]
    by_aws: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(principal label, action, resource, because): what AWS services did with the roles."""
    unexplained: list[Call] = field(default_factory=list)
    """Calls made as an AWS service that no :class:`ServiceAction` of the template explains."""

    def lines(self) -> list[str]:
        out = [f"denied calls: {len(self.denied)}"]
        out += [
            f"  DENIED {c.principal}: {c.action} on {c.resource} ({c.operation})"
            for c in self.denied
        ]
        out.append(f"made by AWS services with the roles: {len(self.by_aws)}")
        out += [f"  BY AWS {p}: {a} on {r} ({why})" for p, a, r, why in self.by_aws]
        out += [
            f"  UNEXPLAINED {c.principal}: {c.action} on {c.resource} ({c.operation}, by {c.by})"
            for c in self.unexplained
        ]
        out.append(f"granted but unused: {len(self.unused)}")
        out += [f"  UNUSED {p} [{sid or '-'}]: {a} on {r}" for p, sid, a, r in self.unused]
        out.append(f"wildcard actions: {len(self.wildcard_actions)}")
        out += [f"  WILDCARD {p} [{sid or '-'}]: {a}" for p, sid, a in self.wildcard_actions]
        return out


def check_calls(
    calls: Iterable[Call],
    policies: Mapping[str, Policy],
    *,
    labels: Mapping[str, str] | None = None,
    service: Sequence[ServiceAction] = (),
) -> PermissionReport:
    """Evaluates every call against its principal's policy; lists the denied calls, the
    grants (statement, action, resource pattern) no call used, and any wildcard action. A
    call made as an AWS service (``Call.by``) must be one of ``service``
    (:func:`service_actions`), else it is listed as unexplained."""
    labels = labels or {}
    denied: list[Call] = []
    used_grants: set[tuple[str, int, str, str]] = set()
    used: dict[str, set[tuple[str, str]]] = {}
    by_aws: set[tuple[str, str, str, str]] = set()
    unexplained: list[Call] = []
    for call in calls:
        if call.by:
            explained = next((s for s in service if s.covers(call)), None)
            if explained is None:
                unexplained.append(call)
            else:
                label = labels.get(call.principal, call.principal)
                by_aws.add((label, call.action, explained.resource, explained.because))
        policy = policies.get(call.principal)
        decision = (
            policy.evaluate(call.action, call.resource, dict(call.context))
            if policy is not None
            else Decision(False)
        )
        if not decision.allowed:
            denied.append(call)
            continue
        used.setdefault(call.principal, set()).add((call.action, call.resource))
        for statement, action, resource in decision.by:
            used_grants.add((call.principal, id(statement), action, resource))
    unused = []
    wildcards = []
    for principal, policy in policies.items():
        label = labels.get(principal, principal)
        for statement, action, resource in policy.grants():
            if "*" in action or "?" in action:
                wildcards.append((label, statement.sid, action))
            if (principal, id(statement), action, resource) not in used_grants:
                unused.append((label, statement.sid, action, resource))
    return PermissionReport(
        denied=sorted(set(denied), key=lambda c: (c.principal, c.action, c.resource)),
        unused=sorted(set(unused)),
        wildcard_actions=sorted(set(wildcards)),
        used=used,
        by_aws=sorted(by_aws),
        unexplained=sorted(set(unexplained), key=lambda c: (c.principal, c.action, c.resource)),
    )


__all__ = [
    "EVENT_SOURCE_MAPPING_SQS_ACTIONS",
    "LAMBDA_LOG_ACTIONS",
    "Call",
    "CallRecorder",
    "IamRequest",
    "PermissionReport",
    "Policy",
    "ServiceAction",
    "Statement",
    "TemplateResolver",
    "action_matches",
    "check_calls",
    "iam_requests",
    "queue_arn",
    "resource_matches",
    "role_policies",
    "service_actions",
]
