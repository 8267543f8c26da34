"""SigV4 signing (extra eventual-client[aws]): what a local handler receives is a valid
AWS Signature Version 4 for execute-api."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("botocore")

from botocore.auth import SigV4Auth as BotoSigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eventual.client import EventualClient, SyncServiceClient
from eventual.client.aws import SigV4Auth

if TYPE_CHECKING:
    from conftest import LiveService

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-tok")
AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


def expected_signature(live: LiveService, request: Any, region: str) -> str:
    """Recompute the signature from what the server received."""
    signed = AUTH.match(request.headers["authorization"])
    assert signed is not None
    names = signed.group("signed").split(";")
    aws = AWSRequest(
        method=request.method,
        url=live.url + request.url,
        data=request._body,
        headers={n: request.headers[n] for n in names},
    )
    aws.context["timestamp"] = request.headers["x-amz-date"]
    signer = BotoSigV4Auth(CREDENTIALS.get_frozen_credentials(), "execute-api", region)
    canonical = signer.canonical_request(aws)
    return signer.signature(signer.string_to_sign(aws, canonical), aws)


def test_requests_carry_a_valid_sigv4_signature(live: LiveService):
    auth = SigV4Auth(region="eu-west-1", credentials=CREDENTIALS)
    with SyncServiceClient(live.url, auth=auth) as client:
        assert client.call("add_all", [1, 2]) == 3
    request = live.received[-1]
    header = request.headers["authorization"]
    m = AUTH.match(header)
    assert m is not None, header
    assert m.group("key") == "AKIDEXAMPLE"
    assert (m.group("region"), m.group("service")) == ("eu-west-1", "execute-api")
    assert set(m.group("signed").split(";")) == {
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
    }
    assert re.fullmatch(r"\d{8}T\d{6}Z", request.headers["x-amz-date"])
    assert m.group("date") == request.headers["x-amz-date"][:8]
    assert request.headers["x-amz-security-token"] == "session-tok"
    assert m.group("signature") == expected_signature(live, request, "eu-west-1")


@pytest.mark.anyio
async def test_async_system_calls_are_signed_too(live: LiveService):
    auth = SigV4Auth(region="us-east-1", credentials=CREDENTIALS)
    async with EventualClient(live.url, auth=auth) as client:
        assert await client.list_workflows() == ["humanApproval", "processOrder"]
    request = live.received[-1]
    assert request.path == "/rpc/_system/listWorkflows"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/execute-api/aws4_request" in request.headers["authorization"]
    assert AUTH.match(request.headers["authorization"]).group("signature") == expected_signature(
        live, request, "us-east-1"
    )


def test_a_tampered_body_does_not_match_the_signature(live: LiveService):
    auth = SigV4Auth(region="eu-west-1", credentials=CREDENTIALS)
    with SyncServiceClient(live.url, auth=auth) as client:
        client.call("add_all", [1, 2])
    request = live.received[-1]
    request._body = b"[1,2,3]"
    assert AUTH.match(request.headers["authorization"]).group("signature") != (
        expected_signature(live, request, "eu-west-1")
    )


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    import httpx

    auth = SigV4Auth()
    assert auth.region == "ap-south-1"
    request = httpx.Request("POST", "https://abc.execute-api.ap-south-1.amazonaws.com/rpc/x")
    auth.sign(request)
    assert "Credential=AKIDENV/" in request.headers["authorization"]
    assert "/ap-south-1/execute-api/aws4_request" in request.headers["authorization"]
