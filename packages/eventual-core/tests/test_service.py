"""Definers, service discovery and the service spec."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from eventual.core import (
    CommandContext,
    EventualError,
    Request,
    Response,
    RetryPolicy,
    ServiceError,
    api,
    command,
    event,
    signal,
    subscription,
    task,
    workflow,
)
from eventual.core.definitions import (
    EventDefinition,
    SignalDefinition,
    SubscriptionDefinition,
    TaskDefinition,
    WorkflowDefinition,
)
from eventual.core.http import CommandDefinition
from eventual.core.service import Service, load_service
from eventual.core.spec import SPEC_VERSION, build_spec

pytestmark = pytest.mark.anyio

ORDER_SERVICE = """
from datetime import timedelta
from pydantic import BaseModel
from eventual.core import api, command, event, signal, subscription, task, workflow, RetryPolicy
from . import tasks

class Order(BaseModel):
    id: str
    amount: int

order_event = event("Order", Order)
cancel = signal("cancel", str)

@workflow("processOrder", timeout=timedelta(days=30))
async def process_order(order: Order) -> str:
    await tasks.charge(order.id, order.amount)
    return "done"

@subscription("onOrder", events=[order_event])
async def on_order(o: Order) -> None: ...

@command
async def send_invoice(order: Order) -> str:
    return order.id

@command("getOrder", path="/orders/{id}", method="GET")
async def get_order(request: dict) -> dict:
    return request

async def mw(request, context, next):
    return await next(context)

private = api.use(mw)

@private.get("/hello/{name}")
async def hello(request):
    return None
"""

ORDER_TASKS = """
from datetime import timedelta
from eventual.core import task, RetryPolicy

@task("charge", timeout=timedelta(minutes=1), retry=RetryPolicy(max_attempts=5))
async def charge(order_id: str, amount: int) -> str:
    return order_id
"""

OTHER_SERVICE = """
from eventual.core import command, task, workflow

@task("charge")
async def charge(x: int) -> int:
    return x

@workflow("other")
async def other(x: int) -> int:
    return await charge(x)

@command
async def send_invoice(x: int) -> int:
    return x
"""


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("services")
    (root / "orders_svc").mkdir()
    (root / "orders_svc" / "__init__.py").write_text("from . import service  # noqa\n")
    (root / "orders_svc" / "service.py").write_text(ORDER_SERVICE)
    (root / "orders_svc" / "tasks.py").write_text(ORDER_TASKS)
    (root / "other_svc").mkdir()
    (root / "other_svc" / "__init__.py").write_text(OTHER_SERVICE)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


def test_two_services_in_one_process_do_not_see_each_other(services: Path) -> None:
    orders = load_service("orders_svc.service")
    other = load_service("other_svc")
    assert orders.name == "orders-svc"
    assert sorted(orders.workflows) == ["processOrder"]
    assert sorted(orders.tasks) == ["charge"]
    assert sorted(orders.commands) == ["getOrder", "send_invoice"]
    assert [r.name for r in orders.routes] == ["GET /hello/{name}"]
    assert sorted(orders.signals) == ["cancel"]
    assert sorted(orders.events) == ["Order"]
    assert sorted(orders.subscriptions) == ["onOrder"]
    assert sorted(other.workflows) == ["other"]
    assert sorted(other.commands) == ["send_invoice"]
    # Same names, different objects: each service sees its own.
    assert orders.tasks["charge"] is not other.tasks["charge"]
    assert other.tasks["charge"].signature.params[0].name == "x"


def test_service_by_path(services: Path) -> None:
    svc = load_service(str(services / "other_svc"))
    assert sorted(svc.workflows) == ["other"]


def test_unknown_entry_says_what_to_do() -> None:
    with pytest.raises(ServiceError, match="cannot import the service entry 'no_such_service_x'"):
        load_service("no_such_service_x")


def test_spec_is_json_with_schemas_routes_and_options(services: Path) -> None:
    spec = build_spec(load_service("orders_svc"))
    assert json.loads(json.dumps(spec)) == spec
    assert spec["spec_version"] == SPEC_VERSION
    assert spec["name"] == "orders-svc"
    (wf,) = spec["workflows"]
    assert wf["name"] == "processOrder"
    assert wf["timeout"] == 30 * 86400
    assert wf["input_schema"]["properties"]["amount"] == {"title": "Amount", "type": "integer"}
    assert wf["output_schema"] == {"type": "string"}
    (charge,) = spec["tasks"]
    assert charge["timeout"] == 60
    assert charge["retry"]["max_attempts"] == 5
    assert charge["input_schema"]["required"] == ["order_id", "amount"]
    commands = {c["name"]: c for c in spec["commands"]}
    assert commands["send_invoice"]["rpc_path"] == "/rpc/send_invoice"
    assert commands["getOrder"]["path"] == "/orders/{id}"
    assert commands["getOrder"]["method"] == "GET"
    assert spec["routes"] == [
        {
            "method": "GET",
            "path": "/hello/{name}",
            "handler": "orders_svc.service:hello",
            "middlewares": 1,
        }
    ]
    assert spec["subscriptions"] == [
        {"name": "onOrder", "handler": "orders_svc.service:on_order", "events": ["Order"]}
    ]
    assert spec["events"][0]["schema"]["title"] == "Order"


def test_spec_from_a_subprocess_runs_no_handler(services: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "eventual.core.spec", "orders_svc"],
        capture_output=True,
        text=True,
        cwd=services,
        check=True,
    )
    assert json.loads(out.stdout)["name"] == "orders-svc"


def test_duplicate_names_in_one_service_fail_with_both_places() -> None:
    async def a(x: int) -> int:
        return x

    t1 = TaskDefinition("dup", a)
    t2 = TaskDefinition("dup", a)
    with pytest.raises(ServiceError, match="task 'dup' is defined twice"):
        Service("s", [t1, t2])


# ---------------------------------------------------------------- definer forms


async def _fn(x: int) -> int:
    return x


def test_task_decorator_and_call_forms() -> None:
    @task
    async def plain(x: int) -> int:
        return x

    @task("named", timeout=timedelta(seconds=5), heartbeat_timeout=2)
    async def named(x: int) -> int:
        return x

    called = task("called", _fn, retry=RetryPolicy(max_attempts=2))
    assert isinstance(plain, TaskDefinition) and plain.name == "plain"
    assert (named.name, named.timeout, named.heartbeat_timeout) == ("named", 5.0, 2.0)
    assert called.name == "called" and called.retry == RetryPolicy(max_attempts=2)


async def test_a_task_called_outside_a_workflow_is_a_plain_call() -> None:
    @task("echo")
    async def echo(x: int) -> int:
        return x + 1

    assert await echo(1) == 2


def test_workflow_signal_event_subscription_forms() -> None:
    @workflow
    async def wf_plain(x: int) -> int:
        return x

    wf_called = workflow("wfCalled", _fn, timeout=timedelta(hours=1))
    assert isinstance(wf_plain, WorkflowDefinition) and wf_plain.name == "wf_plain"
    assert wf_called.timeout == 3600
    s = signal("s", int)
    e = event("E")
    assert isinstance(s, SignalDefinition) and s.payload_type is int
    assert isinstance(e, EventDefinition)

    @subscription("sub", events=[e, "Other"])
    async def sub(payload: dict) -> None: ...

    assert isinstance(sub, SubscriptionDefinition)
    assert sub.event_names == ["E", "Other"]
    with pytest.raises(ValueError, match="at least one event"):
        subscription("empty", events=[])(sub.fn)


def test_workflow_must_be_async_and_take_one_input() -> None:
    def sync(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="must be an `async def`"):
        workflow("bad", sync)  # type: ignore[arg-type]

    async def two(a: int, b: int) -> int:
        return a

    with pytest.raises(TypeError, match="takes one input"):
        workflow("bad2", two)  # type: ignore[arg-type]


async def test_workflow_called_outside_a_workflow_explains() -> None:
    wf = workflow("explain", _fn)
    with pytest.raises(RuntimeError, match="start_execution"):
        await wf(1)


def test_command_forms_and_router_middleware() -> None:
    class In(BaseModel):
        x: int

    @command
    async def c1(i: In) -> int:
        return i.x

    @command("c2", path="/things/{x}", method="get")
    async def c2(i: In, ctx: CommandContext) -> int:
        return i.x

    c3 = command("c3", _fn)

    async def mw1(request: Request, context: CommandContext, next: object) -> Response:
        raise NotImplementedError

    async def mw2(request: Request, context: CommandContext, next: object) -> Response:
        raise NotImplementedError

    router = api.use(mw1)  # type: ignore[arg-type]
    guarded = router.command("c4", _fn)
    router.use(mw2)  # type: ignore[arg-type]
    assert isinstance(c1, CommandDefinition) and c1.name == "c1" and not c1.wants_context
    assert (c2.path, c2.method, c2.wants_context) == ("/things/{x}", "GET", True)
    assert c3.input_type is int
    # use() appends to the router: commands defined before see the later middleware too.
    assert guarded.middlewares == [mw1, mw2]
    assert api.use(mw2) is not router


def test_eventual_error_defaults_and_subclass_registry() -> None:
    from eventual.core.errors import error_from_payload

    class PaymentRejected(EventualError):
        pass

    e = EventualError("boom")
    assert (e.name, e.message, str(e)) == ("EventualError", "boom", "boom")
    named = EventualError("bad", name="Custom")
    assert named.name == "Custom"
    back = error_from_payload("PaymentRejected", "no funds")
    assert type(back) is PaymentRejected and back.message == "no funds"
    other = error_from_payload("KeyError", "'x'")
    assert type(other) is EventualError and other.name == "KeyError"


def test_spec_entry_point_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "eventual.core.spec"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "usage: python -m eventual.core.spec ENTRY" in out.stderr


def test_history_export_round_trip_and_version_check() -> None:
    from datetime import UTC, datetime

    from eventual.core.history import (
        HISTORY_FORMAT_VERSION,
        TaskScheduled,
        WorkflowStarted,
        export_history,
        parse_history,
    )

    events = [
        WorkflowStarted(
            timestamp=datetime(2024, 1, 1, tzinfo=UTC), workflow="w", execution_id="w/1", input=1
        ),
        TaskScheduled(timestamp=datetime(2024, 1, 1, tzinfo=UTC), seq=0, name="t", args=[1]),
    ]
    exported = export_history(events)
    assert exported["version"] == HISTORY_FORMAT_VERSION
    assert exported["events"][1]["type"] == "TaskScheduled"
    assert parse_history(json.dumps(exported)) == events
    assert parse_history(exported["events"]) == events
    with pytest.raises(ValueError, match="history format version 99 is not supported"):
        parse_history({"version": 99, "events": []})


def test_readme_example_service_loads(tmp_path: Path) -> None:
    """The API.md example, as a user would write it, loads and builds a spec."""
    src = textwrap.dedent(
        """
        import asyncio
        from datetime import timedelta
        from pydantic import BaseModel
        from eventual.core import (
            api, command, event, signal, subscription, task, workflow,
            EventualError, Request, Response,
        )

        class Order(BaseModel):
            id: str
            source: str
            amount: int

        class Charge(BaseModel):
            charge_id: str

        @task("chargeCreditCard", timeout=timedelta(minutes=1))
        async def charge_credit_card(source: str, amount: int) -> Charge: ...

        @task("dispatchOrder")
        async def dispatch_order(order: Order) -> None: ...

        order_event = event("Order", Order)
        cancel_signal = signal("cancel", str)

        @workflow("processOrder", timeout=timedelta(days=30))
        async def process_order(order: Order) -> str:
            charge = await charge_credit_card(order.source, order.amount)
            await dispatch_order(order)
            return "done"

        @subscription("onOrder", events=[order_event])
        async def on_order(e: Order) -> None: ...

        @command
        async def send_invoice(order: Order) -> str:
            execution = await process_order.start_execution(order, execution_name=order.id)
            return execution.execution_id

        @api.get("/hello/{name}")
        async def hello(request: Request) -> Response:
            return Response(f"hello {request.params['name']}")
        """
    )
    (tmp_path / "readme_svc.py").write_text(src)
    out = subprocess.run(
        [sys.executable, "-m", "eventual.core.spec", "readme_svc"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    spec = json.loads(out.stdout)
    assert [w["name"] for w in spec["workflows"]] == ["processOrder"]
    assert [t["name"] for t in spec["tasks"]] == ["chargeCreditCard", "dispatchOrder"]


def test_same_named_error_classes_in_two_modules_are_both_caught() -> None:
    from eventual.core.errors import error_from_payload

    def define() -> type[EventualError]:
        class Declined(EventualError):
            pass

        return Declined

    first, second = define(), define()
    raised = error_from_payload("Declined", "no")
    assert isinstance(raised, first) and isinstance(raised, second)
    assert raised.name == "Declined" and raised.message == "no"
    assert type(raised).__name__ == "Declined"


def test_importing_a_service_module_again_does_not_duplicate_its_definitions(
    services: Path,
) -> None:
    import importlib

    first = load_service("other_svc")
    module = importlib.reload(sys.modules["other_svc"])
    again = load_service("other_svc")
    assert sorted(again.tasks) == ["charge"]
    assert again.tasks["charge"] is module.charge
    assert again.tasks["charge"] is not first.tasks["charge"]
