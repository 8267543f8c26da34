"""Record the histories that test_histories.py replays against the current code.

    uv run python apps/order-service/tests/record_histories.py

runs each scenario of processOrder under TestEnvironment and writes its history to
tests/histories/{scenario}.json (the versioned export format, as `eventual history ID
--export FILE` writes it). Commit the files: from then on, a change to processOrder that would
break executions recorded by this version fails CI. Re-record only when such a break is
intended (and running executions have been drained or migrated).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "src"))

SCENARIOS: dict[str, dict[str, Any]] = {
    "dispatched": {"order": {"items": ["book"], "dispatch_after": 60}},
    "cancelled": {"order": {"dispatch_after": 3600}, "cancel_after": 10},
    "declined": {"order": {"source": "declined-0000"}},
    "out-of-stock": {"order": {"items": ["out-of-stock-lamp"], "dispatch_after": 5}},
}


async def record(name: str, scenario: dict[str, Any]) -> dict[str, Any]:
    from order_service import Order, cancel_signal, process_order

    from eventual.core.history import export_history
    from eventual.testing import TestEnvironment

    start = datetime(2024, 1, 1, tzinfo=UTC)
    async with TestEnvironment("order_service", start=start) as env:
        order = Order.model_validate(
            {"id": name, "source": "visa-4242", "amount": 1200, **scenario["order"]}
        )
        execution = await env.start_execution(process_order, order, execution_name=name)
        if "cancel_after" in scenario:
            await env.tick(scenario["cancel_after"])
            await env.send_signal(execution, cancel_signal, "changed my mind")
        await env.tick(3600)
        status = await execution.get_status()
        assert status.status.value != "IN_PROGRESS", f"{name} did not finish"
        return export_history(await execution.get_history())


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        os.environ["ORDER_SERVICE_DB"] = str(Path(data) / "orders.db")
        for name, scenario in SCENARIOS.items():
            exported = await record(name, scenario)
            target = HERE / "histories" / f"{name}.json"
            target.write_text(json.dumps(exported, indent=1) + "\n")
            sys.stdout.write(f"wrote {target} ({len(exported['events'])} events)\n")


if __name__ == "__main__":
    asyncio.run(main())
