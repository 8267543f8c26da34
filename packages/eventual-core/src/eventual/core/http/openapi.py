"""The OpenAPI 3.1 document of a service, built from its spec (pure: no I/O, no handlers).

``build_openapi(spec)`` describes

- every command at ``POST /rpc/{name}`` and, when it declares one, at its REST path, with the
  input and output JSON Schemas of the spec;
- every ``api`` route (raw ``Request -> Response``, so without schemas);
- the system commands at ``POST /rpc/_system/{name}``.

The dev server serves it at ``/openapi.json``; the API Gateway adapter can publish the same
document. JSON Schema definitions (pydantic's ``$defs``) move to ``components/schemas`` so
that every ``$ref`` resolves inside the document.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ..names import NAME_PATTERN
from ..names import RULE as NAME_RULE

OPENAPI_VERSION = "3.1.0"

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+)?\}")
_BODY_METHODS = ("POST", "PUT", "PATCH")
_ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The error contract: an error name and a message (plus validation details).",
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["error", "message"],
}

_EXECUTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["IN_PROGRESS", "SUCCEEDED", "FAILED"]},
        "workflowName": {"type": "string"},
        "startTime": {"type": "string", "format": "date-time"},
        "endTime": {"type": "string", "format": "date-time"},
        "input": {},
        "result": {},
        "error": {"type": "string"},
        "message": {"type": "string"},
        "parent": {
            "type": "object",
            "properties": {"executionId": {"type": "string"}, "seq": {"type": "integer"}},
        },
        "timeoutTime": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "status", "workflowName", "startTime"],
}

_TIMEOUT_SCHEMA: dict[str, Any] = {
    "description": "Seconds, {type: Duration, dur, unit} or {type: Time, isoDate}.",
    "oneOf": [
        {"type": "number"},
        {
            "type": "object",
            "properties": {
                "type": {"const": "Duration"},
                "dur": {"type": "number"},
                "unit": {"type": "string"},
            },
            "required": ["type", "dur"],
        },
        {
            "type": "object",
            "properties": {"type": {"const": "Time"}, "isoDate": {"type": "string"}},
            "required": ["type", "isoDate"],
        },
    ],
}

_EXECUTION_ID = {"type": "object", "properties": {"executionId": {"type": "string"}}}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


_EVENTS_LIST = _obj({"events": {"type": "array", "items": {"type": "object"}}}, ["events"])

# name -> (summary, request body schema, response schema or None for an empty 200)
SYSTEM_COMMANDS: dict[str, tuple[str, dict[str, Any], dict[str, Any] | None]] = {
    "startExecution": (
        "Start a workflow execution (the same name and input returns the running one).",
        _obj(
            {
                "workflow": {"type": "string"},
                "input": {},
                "executionName": {
                    "type": "string",
                    "pattern": NAME_PATTERN,
                    "description": f"the execution's name: {NAME_RULE}",
                },
                "timeout": _TIMEOUT_SCHEMA,
            },
            ["workflow"],
        ),
        _obj({"executionId": {"type": "string"}, "alreadyRunning": {"type": "boolean"}}),
    ),
    "getExecution": (
        "An execution's status, input and result (the body is the bare execution id); an id"
        " that names no execution is answered 200 with an empty body, as the original does.",
        {"type": "string", "description": "the execution id"},
        {"$ref": "#/components/schemas/Execution"},
    ),
    "waitExecution": (
        "Ours: the execution once it has ended, or as it is after `timeout` seconds (default"
        " 20, at most 25): one request per wait instead of polling getExecution. Empty when"
        " no execution has that id; 503 when too many requests wait already.",
        _obj(
            {
                "executionId": {"type": "string"},
                "timeout": {"type": "number", "minimum": 0},
            },
            ["executionId"],
        ),
        {"$ref": "#/components/schemas/Execution"},
    ),
    "listExecutions": (
        "Executions, newest first, filtered by workflow and status.",
        _obj(
            {
                "workflowName": {"type": "string"},
                "statuses": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["IN_PROGRESS", "SUCCEEDED", "FAILED"]},
                },
                "maxResults": {"type": "integer", "minimum": 1},
                "nextToken": {"type": "string"},
                "sortDirection": {"type": "string", "enum": ["ASC", "DESC"]},
            }
        ),
        _obj(
            {
                "executions": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Execution"},
                },
                "nextToken": {"type": "string"},
            },
            ["executions"],
        ),
    ),
    "getExecutionHistory": (
        "The recorded history events of an execution, oldest first.",
        _EXECUTION_ID,
        _EVENTS_LIST,
    ),
    "getExecutionWorkflowHistory": (
        "The recorded history events of an execution (alias of getExecutionHistory).",
        _EXECUTION_ID,
        _EVENTS_LIST,
    ),
    "getExecutionLogs": (
        "Log lines written by workflow code, by execution or workflow.",
        _obj({"executionId": {"type": "string"}, "workflowName": {"type": "string"}}),
        _EVENTS_LIST,
    ),
    "sendSignal": (
        "Send a signal to an execution (`id` deduplicates retries).",
        _obj(
            {
                "executionId": {"type": "string"},
                "signalId": {"type": "string", "description": "the signal's name"},
                "payload": {},
                "id": {"type": "string", "description": "a deduplication id"},
            },
            ["executionId", "signalId"],
        ),
        None,
    ),
    "emitEvents": (
        "Publish events to the service's subscriptions.",
        _obj(
            {
                "events": {
                    "type": "array",
                    "items": _obj({"name": {"type": "string"}, "event": {}}, ["name"]),
                }
            },
            ["events"],
        ),
        None,
    ),
    "updateTask": (
        "Complete (Success/Failure) or heartbeat an asynchronous task by its token.",
        _obj(
            {
                "type": {"type": "string", "enum": ["Success", "Failure", "Heartbeat"]},
                "taskToken": {"type": "string"},
                "result": {},
                "error": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
            ["type", "taskToken"],
        ),
        {"oneOf": [{"type": "null"}, _obj({"cancelled": {"type": "boolean"}})]},
    ),
    "listWorkflows": (
        "The workflows this service defines.",
        {"type": "object"},
        _obj(
            {"workflows": {"type": "array", "items": _obj({"name": {"type": "string"}})}},
            ["workflows"],
        ),
    ),
}


class _Components:
    """Collects JSON Schema definitions under unique component names."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {
            "Error": ERROR_SCHEMA,
            "Execution": _EXECUTION_SCHEMA,
        }

    def hoist(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        """The schema with its ``$defs`` moved into the components and refs rewritten."""
        if not schema:
            return {}
        schema = copy.deepcopy(schema)
        defs: dict[str, Any] = schema.pop("$defs", {}) or {}
        # Pass 1: choose a component name per definition (reuse identical ones).
        identity = {n: n for n in defs}
        mapping: dict[str, str] = {}
        for name, body in defs.items():
            rewritten = _rewrite(body, identity)
            candidate, i = name, 1
            while candidate in self.schemas and self.schemas[candidate] != rewritten:
                i += 1
                candidate = f"{name}{i}"
            mapping[name] = candidate
        # Pass 2: store them with the final names.
        for name, body in defs.items():
            self.schemas.setdefault(mapping[name], _rewrite(body, mapping))
        return _rewrite(schema, mapping)

    def named(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A titled object schema (a pydantic model) becomes a component and a ``$ref``."""
        title = schema.get("title")
        if not isinstance(title, str) or schema.get("type") != "object" or "$ref" in schema:
            return schema
        candidate, i = title, 1
        while candidate in self.schemas and self.schemas[candidate] != schema:
            i += 1
            candidate = f"{title}{i}"
        self.schemas[candidate] = schema
        return {"$ref": f"#/components/schemas/{candidate}"}


def _rewrite(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                name = v[len("#/$defs/") :]
                out[k] = f"#/components/schemas/{mapping.get(name, name)}"
            else:
                out[k] = _rewrite(v, mapping)
        return out
    if isinstance(value, list):
        return [_rewrite(v, mapping) for v in value]
    return value


def _names(spec: dict[str, Any], kind: str) -> list[str]:
    return sorted(d["name"] for d in spec.get(kind, []) if isinstance(d, dict) and "name" in d)


def _with_names(command: str, body: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The body schema with this service's workflow, signal or event names as an enum."""
    field = {"startExecution": ("workflow", "workflows"), "sendSignal": ("signalId", "signals")}
    if command in field:
        prop, kind = field[command]
        body = copy.deepcopy(body)
        body["properties"][prop]["enum"] = _names(spec, kind)
    elif command == "emitEvents":
        body = copy.deepcopy(body)
        body["properties"]["events"]["items"]["properties"]["name"]["enum"] = _names(spec, "events")
    return body


# What a started execution's id leads to (schemathesis follows these in stateful tests).
_EXECUTION_LINKS: dict[str, Any] = {
    "GetExecution": {
        "operationId": "system_getExecution",
        "requestBody": "$response.body#/executionId",
        "description": "The execution just started.",
    },
    "GetExecutionHistory": {
        "operationId": "system_getExecutionHistory",
        "requestBody": {"executionId": "$response.body#/executionId"},
        "description": "Its events.",
    },
    "GetExecutionWorkflowHistory": {
        "operationId": "system_getExecutionWorkflowHistory",
        "requestBody": "$response.body#/executionId",
        "description": "Its replay history.",
    },
    "SendSignal": {
        "operationId": "system_sendSignal",
        "requestBody": {"executionId": "$response.body#/executionId"},
        "description": "A signal to it.",
    },
}


# System commands whose body may be left out.
_OPTIONAL_BODY = frozenset({"listExecutions", "listWorkflows", "getExecutionLogs"})


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return f"{method.lower()}_{words}" if words else method.lower()


def openapi_path(path: str) -> tuple[str, list[str]]:
    """A route path in OpenAPI form (``{rest+}`` -> ``{rest}``) and its parameter names."""
    names = [m.group(1) for m in _PARAM.finditer(path)]
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path), names


def _resolve(schema: dict[str, Any], components: _Components | None) -> dict[str, Any]:
    ref = schema.get("$ref")
    if components is not None and isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return components.schemas.get(ref.rsplit("/", 1)[1], {})
    return schema


def _path_parameters(
    names: list[str], input_schema: dict[str, Any], components: _Components | None = None
) -> list[dict[str, Any]]:
    props = _resolve(input_schema, components).get("properties", {})
    return [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": props.get(n, {"type": "string"}) if isinstance(props, dict) else {},
        }
        for n in names
    ]


def _query_parameters(
    input_schema: dict[str, Any], skip: list[str], components: _Components
) -> list[dict[str, Any]]:
    schema = _resolve(input_schema, components)
    props = schema.get("properties")
    if not isinstance(props, dict):
        return []
    required = set(schema.get("required", []))
    return [
        {"name": n, "in": "query", "required": n in required, "schema": s}
        for n, s in props.items()
        if n not in skip
    ]


def build_openapi(
    spec: dict[str, Any],
    *,
    server_url: str | None = None,
    version: str = "0.0.0",
    include_system: bool = True,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a service spec (``eventual.core.spec.build_spec``)."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    standard_errors = {
        "400": _error("The input is not valid JSON or fails validation."),
        # A handler or middleware may raise HttpError(status, message) with any status.
        "4XX": _error("The handler or a middleware refused the request (HttpError)."),
        "413": _error("The request body is over the server's limit."),
        "500": _error("The handler raised an exception."),
        "5XX": _error("The handler raised HttpError with a server-error status."),
    }

    for c in spec.get("commands", []):
        has_input = c.get("input_schema") is not None
        input_schema = components.named(components.hoist(c.get("input_schema")))
        output_schema = components.named(components.hoist(c.get("output_schema")))
        base: dict[str, Any] = {"tags": ["commands"]}
        if c.get("summary"):
            base["summary"] = c["summary"]
        ok = {
            "200": {"description": "The command's output.", "content": _json_content(output_schema)}
        }
        rpc: dict[str, Any] = {
            **base,
            "operationId": c["name"],
            "responses": {**ok, **standard_errors},
        }
        if has_input:
            rpc["requestBody"] = {"required": True, "content": _json_content(input_schema)}
        paths.setdefault(c.get("rpc_path") or f"/rpc/{c['name']}", {})["post"] = rpc
        if c.get("path"):
            path, names = openapi_path(c["path"])
            method = str(c.get("method") or "POST").upper()
            rest: dict[str, Any] = {
                **base,
                "operationId": f"{c['name']}_rest",
                "responses": {**ok, **standard_errors},
            }
            params = _path_parameters(names, input_schema, components)
            if has_input and method in _BODY_METHODS:
                rest["requestBody"] = {
                    "required": not names,
                    "content": _json_content(input_schema),
                }
            elif has_input:
                params += _query_parameters(input_schema, names, components)
            if params:
                rest["parameters"] = params
            paths.setdefault(path, {})[method.lower()] = rest

    for r in spec.get("routes", []):
        path, names = openapi_path(r["path"])
        methods = _ANY_METHODS if r["method"] == "ANY" else (r["method"],)
        for method in methods:
            op: dict[str, Any] = {
                "tags": ["routes"],
                "operationId": _operation_id(method, r["path"]),
                "responses": {"default": {"description": "The route's response."}},
            }
            if names:
                op["parameters"] = _path_parameters(names, {})
            paths.setdefault(path, {})[method.lower()] = op

    if include_system:
        for name, (summary, body, result) in SYSTEM_COMMANDS.items():
            response: dict[str, Any] = {"description": "OK"}
            if result is not None:
                response["content"] = _json_content(result)
            body = _with_names(name, body, spec)
            if name == "startExecution":
                response["links"] = _EXECUTION_LINKS
            paths[f"/rpc/_system/{name}"] = {
                "post": {
                    "tags": ["system"],
                    "operationId": f"system_{name}",
                    "summary": summary,
                    "requestBody": {
                        "required": name not in _OPTIONAL_BODY,
                        "content": _json_content(body),
                    },
                    "responses": {
                        "200": response,
                        "400": _error("The request body is not what the command takes."),
                        "404": _error("No such execution, workflow or system command."),
                        "409": _error("The execution name is taken by another input."),
                        "413": _error("The request body is over the server's limit."),
                    },
                }
            }

    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": spec.get("name") or "service",
            "version": version,
            "description": f"The HTTP API of the Eventual service {spec.get('name')!r}.",
        },
        "paths": paths,
        "components": {"schemas": components.schemas},
        "tags": [
            {"name": "commands", "description": "The service's commands (RPC and REST)."},
            {"name": "routes", "description": "Raw HTTP routes."},
        ]
        + (
            [{"name": "system", "description": "Eventual's system commands."}]
            if include_system
            else []
        ),
        "x-eventual": {
            "workflows": [w["name"] for w in spec.get("workflows", [])],
            "events": [e["name"] for e in spec.get("events", [])],
            "signals": [s["name"] for s in spec.get("signals", [])],
            "subscriptions": [
                {"name": s["name"], "events": s["events"]} for s in spec.get("subscriptions", [])
            ],
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def openapi_json(spec: dict[str, Any], **kwargs: Any) -> str:
    """:func:`build_openapi` as JSON text."""
    return json.dumps(build_openapi(spec, **kwargs), indent=2)
