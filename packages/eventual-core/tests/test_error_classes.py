"""Error classes that share a name across modules: the awaiting code catches its own."""

from __future__ import annotations

import pytest

from eventual.core import EventualError, ExecutionStatus, task, workflow
from eventual.core.errors import error_from_payload
from eventual.core.runtime import InMemoryRuntime

pytestmark = pytest.mark.anyio


class OutOfStock(EventualError):
    pass


def other_out_of_stock(module: str) -> type[EventualError]:
    """Another class named OutOfStock, as if defined later in ``module``."""
    return type("OutOfStock", (EventualError,), {"__module__": module})


@task("reserveItem")
async def reserve_item(sku: str) -> None:
    raise OutOfStock(f"no {sku}")


@workflow("reserve")
async def reserve(sku: str) -> str:
    try:
        await reserve_item(sku)
    except OutOfStock as e:
        return f"caught own class: {e.message}"
    except EventualError as e:
        return f"caught {type(e).__module__}.{e.name}"
    return "reserved"


async def test_a_later_class_of_the_same_name_elsewhere_does_not_steal_the_error(
    rt: InMemoryRuntime,
) -> None:
    other_out_of_stock("some_other_service.errors")
    handle = await reserve.start_execution("socks")
    await rt.idle()
    status = await handle.get_status()
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == "caught own class: no socks"


def test_an_error_named_by_several_classes_is_an_instance_of_each() -> None:
    a = other_out_of_stock("shop_a.errors")
    b = other_out_of_stock("shop_b.errors")
    raised = error_from_payload("OutOfStock", "x")
    # Whichever module's class the awaiting code imported, `except OutOfStock` catches it.
    assert isinstance(raised, a) and isinstance(raised, b) and isinstance(raised, OutOfStock)
    assert (type(raised).__name__, raised.name, raised.message) == ("OutOfStock", "OutOfStock", "x")


@task("rejectLoudly")
async def reject_loudly(size: int) -> None:
    raise OutOfStock("x" * size)


@workflow("rethrow")
async def rethrow(size: int) -> None:
    await reject_loudly(size)


async def test_a_long_failure_message_is_cut_once_with_its_length(rt: InMemoryRuntime) -> None:
    """A task's failure is recorded with its message cut to MAX_ERROR_MESSAGE characters (so
    it never spills to a payload store); the workflow rethrowing it keeps that cut, not a
    second one."""
    from eventual.core.errors import MAX_ERROR_MESSAGE

    handle = await rethrow.start_execution(100_000)
    await rt.idle()
    execution = await handle.get_status()
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error == "OutOfStock"
    assert execution.message is not None and len(execution.message) == MAX_ERROR_MESSAGE
    assert execution.message.startswith("xxx")
    assert execution.message.endswith("... [cut: 100,000 characters in all]")
    # A message within the bound is kept whole.
    short = await rethrow.start_execution(MAX_ERROR_MESSAGE)
    await rt.idle()
    assert (await short.get_status()).message == "x" * MAX_ERROR_MESSAGE
