// Drives a Python service with the real TypeScript client (@eventual/client 0.57) and prints,
// as one JSON document, what every call returned: what a TypeScript user would see.
//
//   node drive.mjs <path of eventual-client.mjs> <service URL>
//
// The service is tests/support/ts_client_service.py. Errors are caught and reported as
// {error: {status, message, body}}; the Python test asserts on the document.

const [modulePath, serviceUrl] = process.argv.slice(2);
const { HttpEventualClient, ServiceClient, HttpError, core, coreInternal } = await import(modulePath);
const { WorkflowEventType, WorkflowCallHistoryType } = coreInternal;

const client = new HttpEventualClient({ serviceUrl });
const svc = new ServiceClient({ serviceUrl });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(call, ok, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await call();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(100);
  }
}

async function attempt(call) {
  try {
    return { ok: await call() };
  } catch (e) {
    if (!(e instanceof HttpError)) throw e;
    return { error: { status: e.status, message: e.message, body: e.body } };
  }
}

async function allPages(page) {
  const pages = [];
  let nextToken;
  do {
    const got = await page(nextToken);
    pages.push(got);
    nextToken = got.nextToken;
  } while (nextToken);
  return pages;
}

// What the event is, by the original's enums (a CallEvent by the kind of its call).
const kindOf = (e) =>
  e.type === WorkflowEventType.CallEvent
    ? `Call:${WorkflowCallHistoryType[e.event.type] ?? `?${e.event.type}`}`
    : WorkflowEventType[e.type] ?? `kind:${e.kind}`;

const out = {};
out.listWorkflows = await client.listWorkflows();

for (const name of ["o1", "o2", "o3"]) {
  await client.startExecution({ workflow: "listener", input: name, executionName: name });
}
const h1 = await client.startExecution({ workflow: "order", input: { id: "o1", amount: 5 }, executionName: "o1" });
out.started = { executionId: h1.executionId, isHandle: h1 instanceof core.ExecutionHandle };
out.startedAgain = (await client.startExecution({ workflow: "order", input: { id: "o1", amount: 5 }, executionName: "o1" })).executionId;
const h2 = await client.startExecution({ workflow: "order", input: { id: "o2", amount: 1 }, executionName: "o2" });
const h3 = await client.startExecution({ workflow: "order", input: { id: "o3", amount: 2 }, executionName: "o3" });

// Asynchronous tasks, completed by their tokens (the service hands them out by a command).
const token = (id) => until(() => svc.pendingToken(id), (t) => typeof t === "string" && t.length > 0, `the token of ${id}`);
const t1 = await token("o1");
out.heartbeat = await client.sendTaskHeartbeat({ taskToken: t1 });
out.taskSuccess = await client.sendTaskSuccess({ taskToken: t1, result: "approved" });
await client.sendTaskSuccess({ taskToken: await token("o2"), result: "fine" });
out.taskFailure = await client.sendTaskFailure({ taskToken: await token("o3"), error: "Declined", message: "card declined" });

out.sendSignal = await client.sendSignal({ execution: h1.executionId, signal: "go", payload: "now", id: "go-1" });
out.handleSendSignal = await h2.sendSignal("go", "later");
out.emitEvents = await client.emitEvents({ events: [{ name: "Shipped", event: { id: "from-ts" } }] });

out.finished = {};
for (const h of [h1, h2, h3]) {
  out.finished[h.executionId] = await until(() => h.getStatus(), (e) => e && e.status !== "IN_PROGRESS", h.executionId);
}
out.listenerDone = await until(() => client.getExecution("listener/o1"), (e) => e && e.status !== "IN_PROGRESS", "listener/o1");
out.getExecution = await client.getExecution(h1.executionId);
const missing = await client.getExecution("order/missing");
out.missingExecution = { type: typeof missing, value: missing ?? null, falsy: !missing };

const listing = (sortDirection) =>
  allPages((nextToken) => client.listExecutions({ workflowName: "order", maxResults: 2, sortDirection, nextToken }));
out.listAsc = (await listing("ASC")).map((p) => p.executions.map((e) => e.id));
out.listDesc = (await listing("DESC")).map((p) => p.executions.map((e) => e.id));
out.listDefault = (await client.listExecutions({ workflowName: "order" })).executions.map((e) => e.id);
out.listFailed = (await client.listExecutions({ statuses: ["FAILED"] })).executions.map((e) => e.id);

const history = (request) => client.getExecutionHistory({ executionId: h1.executionId, ...request });
out.historyAsc = await history({});
out.historyAscKinds = out.historyAsc.events.map(kindOf);
out.historyDesc = await history({ sortDirection: "DESC" });
out.historyPages = (await allPages((nextToken) => history({ maxResults: 3, nextToken }))).map((p) => p.events);
out.historyDescPages = (await allPages((nextToken) => history({ maxResults: 4, nextToken, sortDirection: "DESC" }))).map((p) => p.events);
out.after = out.historyAsc.events[2].timestamp;
out.historyAfter = await history({ after: out.after });
out.workflowHistory = await client.getExecutionWorkflowHistory(h1.executionId);
out.workflowHistoryKinds = out.workflowHistory.events.map(kindOf);
out.failedHistoryKinds = (await client.getExecutionWorkflowHistory(h3.executionId)).events.map(kindOf);
out.missingHistory = await client.getExecutionHistory({ executionId: "order/missing" });
out.missingWorkflowHistory = await client.getExecutionWorkflowHistory("order/missing");
out.logs = await client.getExecutionLogs({ executionId: h1.executionId });

out.validation = await attempt(() => client.listExecutions({ statuses: ["BOGUS"] }));
out.unknownWorkflow = await attempt(() => client.startExecution({ workflow: "ghost" }));
out.transaction = await attempt(() => client.executeTransaction({ transaction: "transfer", input: { amount: 1 } }));
out.badToken = await attempt(() => client.sendTaskSuccess({ taskToken: "not-a-token", result: 1 }));

process.stdout.write(JSON.stringify(out));
