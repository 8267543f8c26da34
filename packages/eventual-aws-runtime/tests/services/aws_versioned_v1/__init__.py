"""The workflow "vOrder" as first deployed. test_versioning.py deploys aws_versioned_v1, _v2
and _v3 one after the other onto one stack (new Lambda code with executions in flight)."""

from eventual.core import signal, task, workflow

SERVICE_NAME = "versioned"

go = signal("go")


@task("charge")
async def charge(amount: int) -> str:
    return f"charged {amount}"


@task("chargeCents")
async def charge_cents(amount: int) -> str:
    return f"charged {amount * 100} cents"


@task("ship")
async def ship(receipt: str) -> str:
    return f"shipped after {receipt}"


@workflow("vOrder")
async def order(amount: int) -> str:
    receipt = await charge(amount)
    await go.expect_signal(timeout=3600)
    return await ship(receipt)
