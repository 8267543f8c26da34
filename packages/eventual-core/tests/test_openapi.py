"""The OpenAPI 3.1 document built from a service spec."""

from __future__ import annotations

import sys
from typing import Any

from openapi_spec_validator import validate
from pydantic import BaseModel

from eventual.core import Request, Response, api, command, workflow
from eventual.core.http.openapi import build_openapi
from eventual.core.service import load_service
from eventual.core.spec import build_spec


class Address(BaseModel):
    street: str
    city: str


class Customer(BaseModel):
    name: str
    address: Address


class Filter(BaseModel):
    id: str
    limit: int = 10
    status: str | None = None


@command
async def register(customer: Customer) -> Customer:
    """Register a customer.

    More text that is not the summary."""
    return customer


@command("findThings", path="/things/{id}", method="GET")
async def find_things(f: Filter) -> list[str]:
    return []


@command("putFile", path="/files/{key+}", method="PUT")
async def put_file(data: dict[str, Any]) -> None:
    return None


@command
async def ping() -> str:
    return "pong"


@api.all("/proxy/{rest+}")
async def proxy(request: Request) -> Response:
    return Response("")


@workflow("wf")
async def wf(x: int) -> int:
    return x


def doc() -> dict[str, Any]:
    service = load_service(sys.modules[__name__], module_only=True, name="shop")
    return build_openapi(build_spec(service), server_url="http://localhost:3111")


def test_the_document_is_valid_openapi_3_1() -> None:
    d = doc()
    validate(d)
    assert d["openapi"] == "3.1.0"
    assert d["info"]["title"] == "shop"
    assert d["servers"] == [{"url": "http://localhost:3111"}]


def test_model_definitions_move_to_components_and_refs_resolve() -> None:
    d = doc()
    schemas = d["components"]["schemas"]
    body = d["paths"]["/rpc/register"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Customer"}
    assert schemas["Customer"]["properties"]["address"] == {"$ref": "#/components/schemas/Address"}
    assert schemas["Address"]["required"] == ["street", "city"]
    assert "$defs" not in str(d)
    assert d["paths"]["/rpc/register"]["post"]["summary"] == "Register a customer."


def test_rest_get_takes_path_and_query_parameters() -> None:
    op = doc()["paths"]["/things/{id}"]["get"]
    params = {(p["name"], p["in"], p["required"]) for p in op["parameters"]}
    assert params == {("id", "path", True), ("limit", "query", False), ("status", "query", False)}
    assert "requestBody" not in op


def test_greedy_paths_any_routes_and_commands_without_input() -> None:
    paths = doc()["paths"]
    assert "/files/{key}" in paths and "put" in paths["/files/{key}"]
    assert set(paths["/proxy/{rest}"]) == {"get", "post", "put", "patch", "delete"}
    assert "requestBody" not in paths["/rpc/ping"]["post"]


def test_system_commands_are_listed_and_can_be_left_out() -> None:
    spec = build_spec(load_service(sys.modules[__name__], module_only=True, name="shop"))
    with_system = build_openapi(spec)
    assert "/rpc/_system/startExecution" in with_system["paths"]
    assert with_system["x-eventual"]["workflows"] == ["wf"]
    without = build_openapi(spec, include_system=False)
    assert not [p for p in without["paths"] if p.startswith("/rpc/_system/")]
    validate(without)


def test_two_models_with_one_name_get_distinct_components() -> None:
    spec = {
        "name": "clash",
        "commands": [
            {
                "name": "a",
                "input_schema": {
                    "type": "object",
                    "properties": {"x": {"$ref": "#/$defs/Item"}},
                    "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}}},
                },
                "output_schema": {},
            },
            {
                "name": "b",
                "input_schema": {
                    "type": "object",
                    "properties": {"y": {"$ref": "#/$defs/Item"}},
                    "$defs": {"Item": {"type": "object", "properties": {"s": {"type": "string"}}}},
                },
                "output_schema": {},
            },
        ],
    }
    d = build_openapi(spec)
    validate(d)
    schemas = d["components"]["schemas"]
    assert schemas["Item"]["properties"] == {"n": {"type": "integer"}}
    assert schemas["Item2"]["properties"] == {"s": {"type": "string"}}
    b = d["paths"]["/rpc/b"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert b["properties"]["y"] == {"$ref": "#/components/schemas/Item2"}
