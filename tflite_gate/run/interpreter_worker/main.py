"""The worker's main: read the request, run it, write the result (ok or not).

Exit code 0 whenever a result was written; 2 for a request that does not fit
`InterpreterRequest` (the gate's bug, named on stderr, where the parent reads the
worker's last output).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from .failures import PhaseError, error_message, exception_line, failure, failure_kind
from .messages import InterpreterRequest, InterpreterResult, SchemaError, checked
from .status import Status


def main(argv: list[str]) -> int:
    """Entry point; returns 0 whenever a result (ok or not) was written."""
    with open(argv[1], encoding="utf-8") as handle:
        try:
            request: InterpreterRequest = checked(InterpreterRequest, json.load(handle))
        except (SchemaError, ValueError) as exc:
            print(f"{argv[1]}: not a valid request: {exc}", file=sys.stderr)
            return 2
    with open(request.status, "a", encoding="utf-8") as status_file:
        status = Status(status_file)
        try:
            result = _run(request, status)
        except PhaseError as exc:
            result = failure(exc.phase, exc.sample, exc.message, exc.kind)
        except Exception as exc:  # the runtime's error in whatever phase was marked last
            message = error_message(exc)
            result = failure(status.phase, status.sample, message, failure_kind(message))
    write_result(request.result, result)
    return 0


def _run(request: InterpreterRequest, status: Status) -> InterpreterResult:
    """The run, once numpy is known to import: a runtime environment may lack or break it."""
    status.mark("import")
    try:
        import numpy  # noqa: F401
    except Exception as exc:  # reported as an import failure, like a missing runtime
        raise PhaseError("import", None, exception_line(exc), "import") from exc
    from .running import run  # imports numpy

    return run(request, status)


def write_result(path: str, result: InterpreterResult) -> None:
    """Atomically: the parent reads a whole result or none."""
    temporary = Path(path + ".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(result), indent=1), encoding="utf-8")
    temporary.replace(path)
