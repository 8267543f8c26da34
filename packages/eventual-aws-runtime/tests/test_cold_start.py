"""Guards of the handlers' cold start (benchmark 5, ``benchmarks/cold_start.py``).

Each scenario runs in a fresh interpreter, as a new Lambda container does, and checks which
modules its first invocation loaded: a later change that pulls the engine, the AWS adapters or
an HTTP server library back onto a path that does not need them fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SERVICE = """
from pydantic import BaseModel

from eventual.core import command


class AddInput(BaseModel):
    a: int
    b: int


class AddOutput(BaseModel):
    sum: int


@command
async def add(numbers: AddInput) -> AddOutput:
    return AddOutput(sum=numbers.a + numbers.b)
"""

ADD_EVENT = {
    "version": "2.0",
    "rawPath": "/rpc/add",
    "rawQueryString": "",
    "headers": {"content-type": "application/json"},
    "requestContext": {"http": {"method": "POST", "path": "/rpc/add"}, "stage": "$default"},
    "body": '{"a": 20, "b": 22}',
    "isBase64Encoded": False,
}

# Never needed by a command that does not call the runtime.
RUNTIME_MODULES = (
    "eventual.core.engine",
    "eventual.core.runtime",
    "eventual.core.history",
    "eventual.core.models",
    "eventual.core.http.system",
    "eventual.aws_runtime.adapters",
    "boto3",
    "botocore",
)
# Never needed by any handler.
FOREIGN_MODULES = (
    "eventual.core.http.openapi",
    "eventual.core.spec",
    "eventual.core.runtime.sqlite",
    "eventual.core.runtime.memory",
    "eventual.cli",
    "starlette",
    "uvicorn",
    "httpx",
    "sqlite3",
)


def run_fresh(tmp_path: Path, body: str) -> Any:
    """Run ``body`` in a new interpreter serving the one-command service; it leaves its result
    in ``result``, printed as JSON."""
    (tmp_path / "cold_service.py").write_text(SERVICE)
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")])),
            "EVENTUAL_SERVICE_NAME": "cold",
            "EVENTUAL_SERVICE_ENTRY": "cold_service",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    code = "import json, sys\n" + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# What a handler module must not load when it is imported (``python -c pass`` loads none of
# them): the container pays for them on its first invocation, and only if that needs them.
HEAVY_ON_IMPORT = ("logging", "datetime", "asyncio", "pydantic", "eventual.core", "boto3")


@pytest.mark.parametrize(
    "kind", ["command", "orchestrator", "subscription", "system", "task", "timer"]
)
def test_importing_a_handler_loads_nothing_heavy(tmp_path: Path, kind: str) -> None:
    result = run_fresh(
        tmp_path,
        f"""
        import eventual.aws_runtime.handlers.{kind}
        result = sorted(m for m in {HEAVY_ON_IMPORT!r} if m in sys.modules)
        """,
    )
    assert result == []


def test_a_command_first_request_loads_neither_the_runtime_nor_boto3(tmp_path: Path) -> None:
    result = run_fresh(
        tmp_path,
        f"""
        from eventual.aws_runtime.handlers import command
        response = command.handler({ADD_EVENT!r})
        watched = {RUNTIME_MODULES + FOREIGN_MODULES!r}
        result = {{
            "response": response,
            "loaded": sorted(m for m in watched if m in sys.modules),
        }}
        """,
    )
    assert result["response"]["statusCode"] == 200
    assert json.loads(result["response"]["body"]) == {"sum": 42}
    assert result["loaded"] == []


@pytest.mark.parametrize("kind", ["orchestrator", "timer"])
def test_a_runtime_handler_loads_no_foreign_module(tmp_path: Path, kind: str) -> None:
    result = run_fresh(
        tmp_path,
        f"""
        from eventual.aws_runtime.handlers import _common
        runtime = _common.runtime({kind!r})
        result = {{
            "runtime": type(runtime).__name__,
            "loaded": sorted(m for m in {FOREIGN_MODULES!r} if m in sys.modules),
        }}
        """,
    )
    assert result == {"runtime": "Runtime", "loaded": []}


def test_clients_share_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session

    from eventual.aws_runtime import clients

    made: list[Any] = []

    class CountingSession(botocore.session.Session):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(botocore.session, "Session", CountingSession)
    clients.configure()
    try:
        sqs = clients.client("sqs")
        dynamodb = clients.client("dynamodb")
        assert clients.client("sqs") is sqs
        assert sqs.meta.service_model.service_name == "sqs"
        assert dynamodb.meta.service_model.service_name == "dynamodb"
        assert len(made) == 1  # one session (one load of botocore's data), two clients
    finally:
        clients.configure()


def test_a_runtime_handler_builds_no_history_model_it_does_not_use(tmp_path: Path) -> None:
    # The history's models are built on first use (defer_build), and the union adapters of all
    # of them only when something asks for them: building the runtime builds none of them.
    result = run_fresh(
        tmp_path,
        """
        from eventual.aws_runtime.handlers import _common
        _common.runtime("timer")
        from eventual.core import errors, history, models
        built = [
            cls.__name__
            for cls in (*history._EVENT_TYPES.values(), history.ParentRef, history.EmittedEvent,
                        models.Execution, errors.ErrorPayload)
            if cls.__pydantic_complete__
        ]
        result = {"built": built, "adapters": sorted(history._adapters)}
        """,
    )
    assert result == {"built": [], "adapters": []}
