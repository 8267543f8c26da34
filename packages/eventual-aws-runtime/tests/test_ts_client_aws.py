"""The real TypeScript client (@eventual/client 0.57) against the AWS runtime's handlers: the
same checks as eventual-client's ``test_ts_client.py`` against ``eventual dev``.

The moto harness is in-process, and Node needs HTTP: a loopback HTTP server (one thread,
one request at a time) turns each request into the API Gateway event that API Gateway would
deliver (``AwsHarness.http``: the system function for ``/rpc/_system/*``, the command function
for the rest), answers with the function's response, and then lets the harness deliver what
became due, one virtual second later, so the workflows advance while the client polls."""

from __future__ import annotations

import base64
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from eventual.aws_runtime.testing import AwsHarness

SUPPORT = Path(__file__).parents[2] / "eventual-client" / "tests" / "support"
sys.path.insert(0, str(SUPPORT))
sys.path.insert(0, str(SUPPORT / "ts_client"))

import check as ts  # noqa: E402


def _serve(aws: AwsHarness) -> HTTPServer:
    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            path = self.path.split("?", 1)[0]
            with aws.no_faults():
                response = aws.http(
                    "POST",
                    path,
                    body=raw or None,
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                aws.advance(1)
            body = response.get("body") or ""
            data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
            self.send_response(response["statusCode"])
            for key, value in (response.get("headers") or {}).items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return HTTPServer(("127.0.0.1", 0), Gateway)


@pytest.fixture
def gateway_url() -> Iterator[str]:
    ts.skip_without_node()
    with AwsHarness("ts_client_service") as aws:
        server = _serve(aws)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def test_the_typescript_client_against_the_aws_handlers(gateway_url: str) -> None:
    ts.check(ts.drive(gateway_url))
