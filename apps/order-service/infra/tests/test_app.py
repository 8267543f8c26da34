"""``python app.py`` (what ``cdk synth`` runs) synthesizes the order service's stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from eventual.aws_runtime import names as n

INFRA = Path(__file__).resolve().parents[1]


def test_app_synthesizes_the_order_service(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_DEFAULT_ACCOUNT": "123456789012",
        "CDK_DEFAULT_REGION": "eu-west-1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    proc = subprocess.run(
        [sys.executable, "app.py"], cwd=INFRA, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    template = json.loads((tmp_path / "OrderService.template.json").read_text())
    functions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    names = n.ServiceNames.for_service("order-service")
    task_names = {f.get("FunctionName") for f in functions if f["Handler"] == n.HANDLERS["task"]}
    assert task_names == {
        names.task_function(t) for t in ("chargeBack", "chargeCreditCard", "dispatchOrder")
    }
    # The orders live in the stack's table (tests/test_orders_table.py), not in /tmp.
    assert not any("ORDER_SERVICE_DB" in f["Environment"]["Variables"] for f in functions)
    params = [
        r["Properties"]["Name"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    ]
    assert params == [n.service_parameter("order-service")]
    # The bundle asset is in the cloud assembly, ready for `cdk deploy`.
    assets = json.loads((tmp_path / "OrderService.assets.json").read_text())
    zips = [f for f in assets["files"].values() if f["source"]["path"].endswith(".zip")]
    assert len(zips) == 1
    assert (tmp_path / zips[0]["source"]["path"]).is_file()
