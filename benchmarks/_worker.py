"""Child-process entry of ``benchmarks._common.run_worker``:
``python -m benchmarks._worker module:function '{"param": 1}'`` prints the function's dict as
the last line of stdout, prefixed with ``BENCHMARK-RESULT``."""

from __future__ import annotations

import json
import logging
import sys

from benchmarks._common import RESULT_PREFIX, call_worker


def main() -> int:
    target, params = sys.argv[1], json.loads(sys.argv[2])
    # A peer that logs each workflow would spend the benchmark writing to the terminal.
    logging.basicConfig(level=logging.WARNING)
    result = call_worker(target, params)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
