"""The dashboard in a real browser: Debian's Chromium driven by playwright, against
`eventual dev` serving the `dashboard_svc` fixture (and the local proxy `eventual timeline
--service` runs, in front of the same server).

What a user does and sees: each filter of the executions page, the search, the order, the
counts, a new execution arriving live, a signal sent from the execution page reaching the
execution, a start from the input schema's form, an emit, the proxy refusing an action in
read-only mode, an axe-core scan with no serious or critical finding, and 1,000 executions
paged through the wire (never the whole list)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventual.cli.testing import DevServerProcess, wait_for

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).parents[1] / "docs"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module (Debian's, as .ci/run installs it)."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fixture_env: dict[str, str]) -> Iterator[Any]:
    with DevServerProcess(
        "dashboard_svc", tmp_path_factory.mktemp("dashboard"), env=fixture_env
    ) as dev:
        yield dev


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield p
    finally:
        context.close()
    assert errors == [], errors


def system(server: Any, name: str, body: Any = None) -> Any:
    response = httpx.post(f"{server.url}/rpc/_system/{name}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


def start(server: Any, workflow: str, input: Any, name: str) -> str:
    return system(
        server, "startExecution", {"workflow": workflow, "input": input, "executionName": name}
    )["executionId"]


def status_of(server: Any, execution_id: str) -> dict[str, Any]:
    return system(server, "getExecution", execution_id)


def finished(server: Any, execution_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        e = status_of(server, execution_id)
        return e if e["status"] != "IN_PROGRESS" else None

    return wait_for(done, timeout=30, message=f"{execution_id} to end")


def listed_ids(page: Any) -> list[str]:
    return page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)")


def settle(page: Any, action: Callable[[], Any]) -> None:
    """Do ``action`` and wait for the list to show what the filters now ask (a load that
    ended after it, with no search still being typed)."""
    before = int(page.evaluate("Number(document.body.dataset.loads || 0)"))
    action()
    page.wait_for_function(
        f"!document.body.dataset.pending && Number(document.body.dataset.loads || 0) > {before}",
        timeout=10000,
    )


def open_executions(page: Any, server: Any, query: str = "") -> None:
    page.goto(f"{server.url}/_eventual/executions{query}")
    page.wait_for_selector("body[data-rendered]", timeout=15000)


@pytest.fixture(scope="module")
def seeded(server: Any) -> dict[str, Any]:
    ids = [start(server, "checkout", {"id": f"o{i}", "amount": i}, f"order-{i}") for i in range(3)]
    failed = start(server, "explode", "the flux capacitor", "boom-1")
    parent = start(server, "parent", "p", "family")
    waiting = start(server, "review", "doc-7", "review-7")
    for e in [*ids, failed, parent]:
        finished(server, e)
    return {"orders": ids, "failed": failed, "parent": parent, "waiting": waiting}


def test_executions_page_filters_search_order_and_counts(
    page: Any, server: Any, seeded: dict[str, Any]
) -> None:
    open_executions(page, server)
    every = listed_ids(page)
    assert set(seeded["orders"]) | {seeded["failed"], seeded["parent"], seeded["waiting"]} <= set(
        every
    )
    total = len(every)
    counts = dict(
        zip(
            page.locator("#counts button").evaluate_all("bs => bs.map(b => b.dataset.status)"),
            [int(t) for t in page.locator("#counts button .n").all_inner_texts()],
            strict=True,
        )
    )
    assert counts == {"ALL": total, "IN_PROGRESS": 1, "SUCCEEDED": total - 2, "FAILED": 1}
    # Newest first: the review started last.
    assert every[0] == seeded["waiting"]

    # Workflow.
    settle(page, lambda: page.select_option("#f-workflow", "checkout"))
    assert set(listed_ids(page)) >= set(seeded["orders"])  # and the parent's child
    assert set(page.locator("#rows td:nth-child(2)").all_inner_texts()) == {"checkout"}
    assert "workflow=checkout" in page.url
    assert page.locator("#counts button[data-status=ALL] .n").inner_text() == str(
        len(listed_ids(page))
    )
    settle(page, lambda: page.click("#clear"))

    # Status, from the select and from the count buttons.
    settle(page, lambda: page.select_option("#f-status", "FAILED"))
    assert listed_ids(page) == [seeded["failed"]]
    assert page.locator("#rows .status").inner_text() == "failed"
    settle(page, lambda: page.click("#counts button[data-status=IN_PROGRESS]"))
    assert listed_ids(page) == [seeded["waiting"]]
    assert page.get_attribute("#counts button[data-status=IN_PROGRESS]", "aria-pressed") == "true"
    assert page.locator("#rows td.num").inner_text().startswith("running ")
    settle(page, lambda: page.click("#counts button[data-status=ALL]"))

    # Build: the one every execution started on, then one that none did.
    build = status_of(server, seeded["failed"])["build"]
    assert build
    page.fill("#f-build", build)
    settle(page, lambda: page.press("#f-build", "Enter"))
    assert len(listed_ids(page)) == total
    page.fill("#f-build", "0+nosuchbuild")
    settle(page, lambda: page.press("#f-build", "Enter"))
    assert listed_ids(page) == []
    assert "No executions match these filters." in page.inner_text("#empty")
    settle(page, lambda: page.click("#empty button"))

    # Search by name, any case, and by a whole id.
    settle(page, lambda: page.fill("#f-search", "ORDER-1"))
    assert listed_ids(page) == ["checkout/order-1"]
    settle(page, lambda: page.fill("#f-search", seeded["failed"]))
    assert listed_ids(page) == [seeded["failed"]]
    settle(page, lambda: page.fill("#f-search", ""))

    # Oldest first.
    settle(page, lambda: page.select_option("#f-order", "asc"))
    assert listed_ids(page) == list(reversed(every))

    # Relative times, the exact time on hover; durations.
    first = page.locator("#rows time").first
    assert first.get_attribute("title", timeout=1000).endswith("Z")
    assert "ago" in first.inner_text() or first.inner_text() == "just now"
    assert page.locator("#rows td.num").first.inner_text().endswith("ms")

    # The filters live in the URL: a reload (or a shared link) shows the same list.
    page.goto(f"{server.url}/_eventual/executions?workflow=explode&status=FAILED")
    page.wait_for_selector("body[data-rendered]")
    assert listed_ids(page) == [seeded["failed"]]
    assert page.input_value("#f-workflow") == "explode"


def test_a_new_execution_arrives_live(page: Any, server: Any, seeded: dict[str, Any]) -> None:
    open_executions(page, server)
    page.wait_for_selector("#live[data-state=live]")
    assert page.inner_text("#live-text").startswith("Live: updated")
    new = start(server, "checkout", {"id": "live", "amount": 1}, "arrives-live")
    page.wait_for_selector(f'#rows tr.fresh[data-id="{new}"]', timeout=10000)
    assert listed_ids(page)[0] == new
    # Paused: nothing moves, and the page says so.
    page.click("#pause")
    assert page.inner_text("#live-text") == "Live updates paused"
    assert page.get_attribute("#pause", "aria-pressed") == "true"
    unseen = start(server, "checkout", {"id": "later", "amount": 1}, "while-paused")
    assert unseen not in listed_ids(page)
    page.click("#pause")
    assert page.inner_text("#pause") == "Pause live updates"
    page.wait_for_selector(f'#rows tr[data-id="{unseen}"]', timeout=10000)


def test_signal_sent_from_the_page_reaches_the_execution(
    page: Any, server: Any, seeded: dict[str, Any]
) -> None:
    waiting = start(server, "review", "doc-9", "review-9")
    page.goto(f"{server.url}/_eventual/timeline/{waiting.replace('/', '%2F')}")
    page.wait_for_selector("body[data-rendered]")
    assert page.inner_text("#status") == "IN_PROGRESS"
    page.wait_for_selector("#send-signal:not([disabled])")
    page.select_option("#signal-name", "approve")
    page.click("#send-signal")
    area = page.locator("dialog textarea")
    # Checked against the signal's schema before anything is sent.
    area.fill('{"approved": "yes"}')
    page.click("dialog button[type=submit]")
    assert "does not match the schema" in page.inner_text("dialog .form-error")
    assert "approved: must be boolean" in page.inner_text("dialog .form-error")
    assert "by: is required" in page.inner_text("dialog .form-error")
    assert status_of(server, waiting)["status"] == "IN_PROGRESS"
    area.fill('{"approved": true, "by": "ada"}')
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog", state="detached")
    assert page.inner_text("#notice") == f"Sent approve to {waiting}."
    assert finished(server, waiting)["result"] == "doc-9 approved by ada"
    page.wait_for_function("document.getElementById('status').textContent === 'SUCCEEDED'")
    assert "SignalReceived" in page.inner_text("#history")
    assert page.inner_text("#outcome") == '"doc-9 approved by ada"'


def test_start_from_the_input_schema_form(page: Any, server: Any, seeded: dict[str, Any]) -> None:
    open_executions(page, server)
    page.select_option("#start-workflow", "checkout")
    page.click("#start")
    dialog = page.locator("dialog")
    assert dialog.get_by_label("Id").get_attribute("type") == "text"
    assert dialog.get_by_label("Amount").get_attribute("type") == "number"
    assert dialog.get_by_label("Express").get_attribute("type") == "checkbox"
    assert dialog.locator("small").first.inner_text() == "The order's id"
    dialog.get_by_label("Id").fill("from-form")
    dialog.get_by_label("Amount").fill("-3")
    dialog.get_by_label("Express").check()
    dialog.get_by_label("Execution name (optional)").fill("formed")
    dialog.locator("button[type=submit]").click()
    assert "amount: must be at least 0" in page.inner_text("dialog .form-error")
    dialog.get_by_label("Amount").fill("21")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("dialog", state="detached")
    assert page.inner_text("#notice") == "Started checkout/formed."
    done = finished(server, "checkout/formed")
    assert done["input"] == {"id": "from-form", "amount": 21, "express": True}
    assert done["result"] == "from-form:42"
    page.wait_for_selector('#rows tr[data-id="checkout/formed"]')


def test_execution_page_history_logs_parent_and_children(
    page: Any, server: Any, seeded: dict[str, Any]
) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url.rsplit("/", 1)[-1]))
    page.goto(f"{server.url}/_eventual/timeline/{seeded['parent'].replace('/', '%2F')}")
    page.wait_for_selector("body[data-rendered]")
    assert page.inner_text("#outcome") == '"parent of p-child:2"'
    events = page.locator("#history tr td:nth-child(3)").all_inner_texts()
    assert events[0] == "WorkflowStarted" and events[-1] == "WorkflowSucceeded"
    assert "ChildWorkflowScheduled" in events
    # The page reads the history whole, in one request (each page of getExecutionHistory
    # costs the server the whole history), and lists it as getExecutionHistory does.
    assert asked.count("getExecutionWorkflowHistory") == 1
    assert "getExecutionHistory" not in asked
    listed = system(server, "getExecutionHistory", {"executionId": seeded["parent"]})["events"]
    assert page.evaluate("(wire) => wire.map((e) => fromWire(e).type)", listed) == events
    child = page.locator("a[data-rel=child]")
    child.click()
    page.wait_for_selector("a[data-rel=parent]")
    assert page.inner_text("a[data-rel=parent]") == seeded["parent"]
    page.wait_for_selector("#logs tr")
    assert "checking out p-child" in page.inner_text("#logs")

    page.goto(f"{server.url}/_eventual/timeline/{seeded['failed'].replace('/', '%2F')}")
    page.wait_for_selector("body[data-rendered]")
    assert page.inner_text("#h-outcome") == "Error"
    assert page.inner_text("#outcome") == "ValueError: the flux capacitor"
    # The timeline's bars are reachable from the keyboard.
    page.keyboard.press("Tab")
    for _ in range(30):
        if page.evaluate("document.activeElement.classList.contains('bar')"):
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('bar')")
    assert "workflow explode" in page.inner_text("#details")


def test_service_page_and_emit(page: Any, server: Any) -> None:
    page.goto(f"{server.url}/_eventual/service")
    page.wait_for_selector("body[data-rendered]")
    assert page.inner_text("h1") == "Service dashboard-svc"
    cards = page.locator("[data-workflow]").evaluate_all("cs => cs.map(c => c.dataset.workflow)")
    assert cards == ["bulk", "checkout", "explode", "fanout", "parent", "review"]
    assert "Subscribed by onPing" in page.inner_text("[data-event=Ping]")
    page.click("[data-event=Ping] button")
    page.locator("dialog textarea").fill('{"n": "x"}')
    page.click("dialog button[type=submit]")
    assert "n: must be integer" in page.inner_text("dialog .form-error")
    page.locator("dialog textarea").fill('{"n": 7}')
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog", state="detached")
    assert page.inner_text("#notice") == "Emitted Ping."
    wait_for(lambda: "ping 7" in server.log(), timeout=15, message="the subscription's log line")


def test_proxy_read_only_refuses_actions_server_side(
    page: Any, server: Any, seeded: dict[str, Any]
) -> None:
    """`eventual timeline --service` (read-only by default) in front of the service: the page
    hides the actions, and the proxy refuses them whatever the page sends."""
    from eventual.cli.client import DevClient
    from eventual.cli.timeline_proxy import TimelineServer

    waiting = start(server, "review", "doc-ro", "review-ro")
    with DevClient(server.url) as client, TimelineServer(client, label="dashboard-svc") as proxy:
        page.goto(proxy.page_url(waiting))
        page.wait_for_selector("body[data-rendered]")
        assert page.locator("nav .readonly").inner_text() == "read-only"
        assert page.locator("#send-signal").count() == 0
        assert "Read-only" in page.inner_text("#actions")
        answer = page.evaluate(
            """async (id) => {
                const r = await fetch('/rpc/_system/sendSignal', {method: 'POST',
                  headers: {'content-type': 'application/json'},
                  body: JSON.stringify({executionId: id, signalId: 'approve',
                                        payload: {approved: true, by: 'mallory'}})});
                return [r.status, await r.json()];
            }""",
            waiting,
        )
        assert answer[0] == 403 and answer[1]["error"] == "ReadOnly"
        assert "--allow-actions" in answer[1]["message"]
        page.goto(proxy.url + "/_eventual/executions")
        page.wait_for_selector("body[data-rendered]")
        assert page.is_hidden("#start-bar")
    assert status_of(server, waiting)["status"] == "IN_PROGRESS"

    # With --allow-actions the same page signals through the proxy.
    with (
        DevClient(server.url) as client,
        TimelineServer(client, label="dashboard-svc", read_only=False) as proxy,
    ):
        page.goto(proxy.page_url(waiting))
        page.wait_for_selector("#send-signal:not([disabled])")
        page.click("#send-signal")
        page.locator("dialog textarea").fill('{"approved": true, "by": "grace"}')
        page.click("dialog button[type=submit]")
        page.wait_for_selector("dialog", state="detached")
    assert finished(server, waiting)["result"] == "doc-ro approved by grace"


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map(n => n.target.join(' '))}))"""
    )


def test_axe_core_finds_nothing_serious(page: Any, server: Any, seeded: dict[str, Any]) -> None:
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}")
    found: dict[str, list[dict[str, Any]]] = {}
    open_executions(page, server)
    found["executions"] = _axe(page)
    page.select_option("#start-workflow", "checkout")
    page.click("#start")
    found["start dialog"] = _axe(page)
    page.goto(f"{server.url}/_eventual/executions?workflow=nothing-here")
    page.wait_for_selector("body[data-rendered]")
    found["empty"] = _axe(page)
    page.goto(f"{server.url}/_eventual/timeline/{seeded['waiting'].replace('/', '%2F')}")
    page.wait_for_selector("body[data-rendered]")
    page.wait_for_selector("#send-signal:not([disabled])")
    found["execution"] = _axe(page)
    page.click("#send-signal")
    found["signal dialog"] = _axe(page)
    page.goto(f"{server.url}/_eventual/service")
    page.wait_for_selector("body[data-rendered]")
    found["service"] = _axe(page)
    serious = {
        where: [v for v in violations if v["impact"] in ("serious", "critical")]
        for where, violations in found.items()
    }
    assert all(not v for v in serious.values()), json.dumps(serious, indent=2)


def test_a_thousand_executions_are_paged_through_the_wire(page: Any, server: Any) -> None:
    seed = start(server, "fanout", 1000, "thousand")
    assert finished(server, seed)["result"] == sum(range(1000))
    wait_for(
        lambda: (
            system(server, "countExecutions", {"workflowName": "bulk"})["counts"]["SUCCEEDED"]
            == 1000
        ),
        timeout=120,
        message="1,000 bulk executions to finish",
    )
    asked: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            asked.append(json.loads(r.post_data or "null"))
            if r.url.endswith("/listExecutions")
            else None
        ),
    )
    open_executions(page, server, "?workflow=bulk&size=100")
    assert page.locator("#rows tr").count() == 100
    assert page.locator("#counts button[data-status=ALL] .n").inner_text() == "1,000"
    assert page.inner_text("#page-info") == "Page 1: 1\u2013100 of 1,000"
    seen = set(listed_ids(page))
    for n in range(2, 11):
        page.click("#next")
        page.wait_for_function(
            f"document.getElementById('page-info').textContent.startsWith('Page {n}:')"
        )
        seen |= set(listed_ids(page))
    assert page.inner_text("#page-info") == "Page 10: 901\u20131,000 of 1,000"
    assert page.is_disabled("#next")
    assert len(seen) == 1000
    assert page.inner_text("#live-text") == "Live updates on the first page only"
    # Every request asked for one page; none for the whole list.
    assert asked and all(body["maxResults"] == 100 for body in asked)
    page.click("#prev")
    page.wait_for_function("document.getElementById('page-info').textContent.startsWith('Page 9:')")
    started = time.monotonic()
    settle(page, lambda: page.fill("#f-search", "THOUSAND.500"))
    assert listed_ids(page) == ["bulk/fanout.thousand.500"]
    assert time.monotonic() - started < 10


def test_search_and_counts_over_the_wire(server: Any, seeded: dict[str, Any]) -> None:
    """The system commands the dashboard adds: a search paged one match at a time (a token
    made in the middle of a store page goes on right after the last match), and counts."""
    found: list[str] = []
    token = None
    for _ in range(10):
        body: dict[str, Any] = {"search": "ORDER-", "maxResults": 1, "sortDirection": "ASC"}
        if token:
            body["nextToken"] = token
        page = system(server, "listExecutions", body)
        found += [e["id"] for e in page["executions"]]
        assert page["scanned"] >= len(page["executions"])
        token = page.get("nextToken")
        if not token:
            break
    assert found == seeded["orders"]
    counts = system(server, "countExecutions", {"workflowName": "explode"})
    assert counts == {"counts": {"IN_PROGRESS": 0, "SUCCEEDED": 0, "FAILED": 1}, "total": 1}
    bad = httpx.post(f"{server.url}/rpc/_system/listExecutions", json={"search": 3})
    assert bad.status_code == 400 and "search must be a string" in bad.json()["message"]
    spec = system(server, "getServiceSpec")
    assert spec["name"] == "dashboard-svc" and "approve" in [s["name"] for s in spec["signals"]]
