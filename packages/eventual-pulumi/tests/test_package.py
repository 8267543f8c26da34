import importlib


def test_the_package_imports_without_a_pulumi_engine() -> None:
    module = importlib.import_module("eventual.pulumi")
    assert module.__doc__
