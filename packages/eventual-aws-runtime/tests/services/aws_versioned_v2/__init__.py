"""The workflow "vOrder", second version: the charge changed behind a patch. test_versioning.py
deploys it over aws_versioned_v1 with executions in flight."""

from eventual.core import patched, signal, task, workflow

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
    if patched("cents"):
        receipt = await charge_cents(amount)
    else:
        receipt = await charge(amount)
    await go.expect_signal(timeout=3600)
    return await ship(receipt)
