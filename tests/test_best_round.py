"""``benchmarks._common.best_round``: how the throughput comparison folds its rounds."""

from __future__ import annotations

from collections.abc import Callable


def test_each_timing_is_its_least_round_and_other_keys_come_from_the_first(
    run_at_root: Callable[[str], str],
) -> None:
    code = (
        "from benchmarks._common import best_round; print(best_round(["
        "{'sequential': 2.0, 'concurrent': 1.0, 'version': '1.7', 'rows': 3},"
        "{'sequential': 1.5, 'concurrent': 1.2, 'version': 'other', 'rows': 9}]))"
    )
    assert run_at_root(code).strip() == (
        "{'sequential': 1.5, 'concurrent': 1.0, 'version': '1.7', 'rows': 3}"
    )


def test_a_round_that_did_not_run_is_ignored_unless_none_ran(
    run_at_root: Callable[[str], str],
) -> None:
    code = (
        "from benchmarks._common import best_round; "
        "print(best_round([{'missing': 'no server'}, {'concurrent': 4.0}])); "
        "print(best_round([{'missing': 'no server'}, {'missing': 'again'}]))"
    )
    assert run_at_root(code).splitlines() == [
        "{'concurrent': 4.0}",
        "{'missing': 'no server'}",
    ]
