"""Bad input against the dev server: schemathesis generates requests from the service's own
OpenAPI document (valid and invalid ones) and checks every response: no 5xx, and every
response conforms to what the document says (status codes, content types, body schemas)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from eventual.cli.testing import DevServerProcess

APP = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServerProcess]:
    work = tmp_path_factory.mktemp("fuzz")
    env = {"ORDER_SERVICE_DB": str(work / "orders.db")}
    with DevServerProcess(str(APP), work, env=env) as dev:
        yield dev


@pytest.fixture(scope="module")
def api_schema(server: DevServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_no_server_error_and_every_response_as_documented(
    api_schema: schemathesis.BaseSchema,
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call()
            if _unknown_execution(case, response):
                return
            # Every check but "a schema-valid request must be accepted": ids and page tokens
            # are opaque strings in the schema, and a made-up one is rightly answered 4xx.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()


def test_stateful_call_sequences_never_answer_a_server_error(
    api_schema: schemathesis.BaseSchema,
) -> None:
    """Sequences that follow the document's links (a started execution's id into
    getExecution, its histories and sendSignal): every response as documented, no 5xx."""
    seen: set[str] = set()

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(  # type: ignore[override]
            self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any
        ) -> None:
            seen.add(case.operation.path)
            if _unknown_execution(case, response):
                return
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

    Machine.run(
        settings=settings(
            max_examples=40,
            stateful_step_count=5,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The links were followed: a started execution's id reached the calls that take one.
    assert "/rpc/_system/startExecution" in seen
    assert seen & {"/rpc/_system/getExecution", "/rpc/_system/sendSignal"}, seen


def _unknown_execution(case: schemathesis.Case, response: Any) -> bool:
    """``getExecution`` (and ``waitExecution``) of an id that names no execution answers 200
    with an empty body, as the TypeScript original does (its client then returns
    ``undefined``): a documented exception (see the operation's description) that an OpenAPI
    response cannot express."""
    if not case.operation.path.endswith(("/_system/getExecution", "/_system/waitExecution")):
        return False
    if response.status_code != 200 or response.content:
        return False
    assert "content-type" not in {k.lower() for k in response.headers}
    return True
