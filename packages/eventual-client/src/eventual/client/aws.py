"""AWS SigV4 request signing for services whose routes are IAM-protected (API Gateway).

Needs the optional extra: ``pip install 'eventual-client[aws]'`` (botocore).

    from eventual.client import EventualClient
    from eventual.client.aws import SigV4Auth

    client = EventualClient(url, auth=SigV4Auth(region="us-east-1"))
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

try:
    from botocore.auth import SigV4Auth as _BotoSigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.session import Session
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "eventual.client.aws needs botocore; install the extra: pip install 'eventual-client[aws]'"
    ) from exc

__all__ = ["Credentials", "SigV4Auth"]

#: Headers that are signed besides ``host`` and botocore's own ``x-amz-*`` headers. Headers
#: a proxy may rewrite (connection, accept-encoding, user-agent...) are left unsigned.
_SIGNED = ("content-type",)


class SigV4Auth(httpx.Auth):
    """Signs each request with AWS Signature Version 4 (service ``execute-api``).

    ``credentials`` default to botocore's chain (environment, ``~/.aws``, instance role...),
    read again for every request so refreshed credentials are used; ``region`` defaults to
    the session's region."""

    requires_request_body = True

    def __init__(
        self,
        region: str | None = None,
        *,
        credentials: Credentials | None = None,
        service: str = "execute-api",
        profile: str | None = None,
    ) -> None:
        session: Any = None
        if credentials is None or region is None:
            session = Session(profile=profile)
        found = region or (session.get_config_variable("region") if session else None)
        if not found:
            raise ValueError("SigV4Auth needs a region: pass region='us-east-1' or set AWS_REGION")
        self.region: str = str(found)
        self.service = service
        self._credentials = credentials
        self._session = session

    def _frozen(self) -> Any:
        credentials = self._credentials
        if credentials is None:
            credentials = self._session.get_credentials() if self._session else None
        if credentials is None:
            raise RuntimeError(
                "SigV4Auth found no AWS credentials; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "configure a profile, or pass credentials=Credentials(key, secret, token)"
            )
        return credentials.get_frozen_credentials()

    def sign(self, request: httpx.Request) -> None:
        """Add ``Authorization``, ``X-Amz-Date`` (and ``X-Amz-Security-Token``) to ``request``."""
        headers = {k: request.headers[k] for k in _SIGNED if k in request.headers}
        aws_request = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        _BotoSigV4Auth(self._frozen(), self.service, self.region).add_auth(aws_request)
        for name, value in aws_request.headers.items():
            request.headers[name] = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
