"""``eventual.core`` loads its parts on first use (PEP 562), which keeps the AWS handlers' cold
start small; every public name still imports from it."""

from __future__ import annotations

import json
import subprocess
import sys

import eventual.core


def fresh(code: str) -> object:
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + code + "\nprint(json.dumps(result))"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_package_loads_none_of_its_parts() -> None:
    loaded = fresh(
        "import eventual.core\n"
        "result = sorted(m for m in sys.modules if m.startswith(('eventual.core.', 'pydantic')))"
    )
    assert loaded == ["eventual.core._lazy"]  # the loader itself, standard library only


def test_the_http_layer_does_not_load_the_engine_or_the_history() -> None:
    loaded = fresh(
        "from eventual.core import command, api\n"
        "import eventual.core.http.handler, eventual.core.service\n"
        "heavy = ('eventual.core.engine', 'eventual.core.runtime', 'eventual.core.history',\n"
        "         'eventual.core.models', 'eventual.core.http.openapi', 'eventual.core.spec')\n"
        "result = sorted(m for m in heavy if m in sys.modules)"
    )
    assert loaded == []


def test_every_public_name_resolves_to_its_defining_module() -> None:
    from eventual.core import definitions, errors, history, http, models, service

    homes = (definitions, errors, history, http, models, service)
    for name in eventual.core.__all__:
        value = getattr(eventual.core, name)
        assert any(getattr(m, name, None) is value for m in homes), name
    assert set(eventual.core.__all__) <= set(dir(eventual.core))
    namespace: dict[str, object] = {}
    exec("from eventual.core import *", namespace)
    assert set(eventual.core.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        eventual.core.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
