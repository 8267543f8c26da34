"""Deployed services: find a service's API from the discovery record its construct writes, and
sign the system commands with AWS SigV4.

``eventual.cdk.Service`` writes an SSM String parameter at ``/eventual/services/{name}`` (see
``eventual.aws_runtime.names.service_parameter``) holding a JSON record: ``version``,
``service``, ``apiUrl``, ``eventBusArn``, ``eventBusName``, ``region``, ``account``,
``logGroup`` and ``stack``. ``connect(url, service, region)`` is the one place every command
turns its options into a configured :class:`~eventual.cli.client.DevClient`.

botocore (through ``eventual-client[aws]``) loads only when ``--service`` is used.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import DEFAULT_URL, SERVICE_ENV, URL_ENV, CliError

if TYPE_CHECKING:
    from .client import DevClient

# Kept equal to eventual.aws_runtime.names (the CLI does not depend on the AWS runtime); a
# test checks the two agree.
SERVICE_PARAMETER_PREFIX = "/eventual/services/"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")


def service_parameter(service_name: str) -> str:
    """The SSM parameter name of a service's discovery record."""
    return SERVICE_PARAMETER_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "-", service_name)


@dataclass(frozen=True)
class ServiceRecord:
    """A deployed service's discovery record."""

    service: str
    api_url: str
    region: str
    parameter: str
    event_bus_name: str = ""
    event_bus_arn: str = ""
    account: str = ""
    log_group: str = ""
    stack: str = ""
    version: int = 1
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "apiUrl": self.api_url,
            "region": self.region,
            "account": self.account,
            "stack": self.stack,
            "eventBusName": self.event_bus_name,
            "eventBusArn": self.event_bus_arn,
            "logGroup": self.log_group,
            "parameter": self.parameter,
            "version": self.version,
        }


@dataclass(frozen=True)
class Target:
    """Where the commands go: a URL (the dev server, unsigned) or a deployed service."""

    url: str | None = None
    service: str | None = None
    region: str | None = None


def resolve_target(
    *,
    url: str | None = None,
    service: str | None = None,
    region: str | None = None,
    global_url: str | None = None,
    global_service: str | None = None,
    global_region: str | None = None,
    env: dict[str, str] | None = None,
) -> Target:
    """A command's own --url/--service win over the global ones, which win over
    ``$EVENTUAL_URL``/``$EVENTUAL_SERVICE``; the default is the local dev server."""
    environ = dict(os.environ) if env is None else env
    region = region or global_region
    for level_url, level_service, where in (
        (url, service, "this command's options"),
        (global_url, global_service, "the global options"),
        (environ.get(URL_ENV) or None, environ.get(SERVICE_ENV) or None, "the environment"),
    ):
        if level_url and level_service:
            if where == "the environment":
                raise CliError(
                    f"both ${URL_ENV} and ${SERVICE_ENV} are set: unset one, or pass --url or "
                    "--service"
                )
            raise CliError(f"give --url or --service, not both (in {where})")
        if level_url:
            return Target(url=level_url)
        if level_service:
            return Target(service=level_service, region=region)
    return Target(url=DEFAULT_URL)


def _botocore_session() -> Any:
    try:
        from botocore.session import Session
    except ImportError:
        raise CliError(
            "--service needs botocore: install eventual-cli with eventual-client[aws] "
            "(uv add 'eventual-client[aws]')"
        ) from None
    return Session()


def find_region(region: str | None, session: Any = None) -> str:
    """``region``, else $AWS_REGION / $AWS_DEFAULT_REGION, else the AWS profile's region."""
    found = region or next((os.environ[v] for v in REGION_ENVS if os.environ.get(v)), None)
    if not found and session is not None:
        try:
            found = session.get_config_variable("region")
        except Exception:  # a broken ~/.aws/config: treated as "no region"
            found = None
    if not found:
        raise CliError(
            "which AWS region is the service in? pass --region (e.g. --region us-east-1) or "
            "set AWS_REGION"
        )
    return str(found)


def read_service_record(service: str, region: str | None = None) -> ServiceRecord:
    """Read ``service``'s discovery record from SSM in ``region``."""
    session = _botocore_session()
    region = find_region(region, session)
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    name = service_parameter(service)
    try:
        ssm = session.create_client("ssm", region_name=region)
        answer = ssm.get_parameter(Name=name)
    except (NoCredentialsError, PartialCredentialsError):
        raise CliError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or sign in with `aws sso login`"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code == "ParameterNotFound":
            raise CliError(
                f"no deployed service {service!r} in {region}: the SSM parameter {name} does "
                "not exist. Deploy its stack (eventual deploy) or check --service and --region"
            ) from None
        raise CliError(
            f"cannot read the SSM parameter {name} in {region}: {code}: {error.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"cannot read the SSM parameter {name} in {region}: {exc}") from None
    return parse_record(answer["Parameter"]["Value"], parameter=name, region=region)


def parse_record(text: str, *, parameter: str, region: str) -> ServiceRecord:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("apiUrl"), str) or not data["apiUrl"]:
        raise CliError(
            f"the SSM parameter {parameter} is not an Eventual service record (no apiUrl): "
            "redeploy the stack with eventual.cdk.Service"
        )
    return ServiceRecord(
        service=str(data.get("service") or parameter.removeprefix(SERVICE_PARAMETER_PREFIX)),
        api_url=data["apiUrl"],
        region=str(data.get("region") or region),
        parameter=parameter,
        event_bus_name=str(data.get("eventBusName") or ""),
        event_bus_arn=str(data.get("eventBusArn") or ""),
        account=str(data.get("account") or ""),
        log_group=str(data.get("logGroup") or ""),
        stack=str(data.get("stack") or ""),
        version=int(data.get("version") or 1),
        raw=data,
    )


def sigv4_auth(region: str) -> Any:
    """The request signer of eventual-client (service ``execute-api``)."""
    try:
        from eventual.client.aws import SigV4Auth
    except ImportError:
        raise CliError(
            "--service needs eventual-client[aws] (botocore) to sign requests: "
            "uv add 'eventual-client[aws]'"
        ) from None
    return SigV4Auth(region=region)


def connect(
    url: str | None = None, service: str | None = None, region: str | None = None
) -> DevClient:
    """A client for a dev server at ``url`` or for the deployed ``service`` (its API URL from
    the discovery record, its system commands signed with SigV4)."""
    from .client import DevClient

    if service:
        record = read_service_record(service, region)
        return DevClient(
            record.api_url,
            system_auth=sigv4_auth(record.region),
            label=f"the service {record.service!r} ({record.region})",
        )
    return DevClient(url or DEFAULT_URL)


def connect_target(target: Target) -> DevClient:
    return connect(target.url, target.service, target.region)
