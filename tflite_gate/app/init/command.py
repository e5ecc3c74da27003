"""`tflite-gate init`: a first policy, measured on the model, that passes as written.

Nothing is guessed: an input whose sizes are unknown stops `init` with the question,
and a model that does not convert or run stops it with the findings. With
`--variants` and an existing policy, the variants are added to it instead
(`init.add_variants`).
"""

from __future__ import annotations

import re
from pathlib import Path

from tflite_gate.app.init.add_variants import add_variants_to_policy
from tflite_gate.app.init.probe import probe_policy, run_probe
from tflite_gate.app.init.request import (
    InitError,
    InitOutcome,
    InitRequest,
    find_sources,
    internal_error,
    model_name,
    variant_entries,
)
from tflite_gate.app.init.starter import (
    SCHEMA_FILE_NAME,
    StarterError,
    check_starter,
    needed_runtime,
    starter_policy,
    used_ops,
)
from tflite_gate.app.schema import schema_text
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import display_path_for
from tflite_gate.policy.schema import NAME_PATTERN
from tflite_gate.support.files import write_text_atomic
from tflite_gate.support.lifetime import owned_scratch
from tflite_gate.support.run_options import Progress


def _source(request: InitRequest) -> str:
    if request.source:
        return request.source
    found = find_sources(request.workspace)
    if len(found) == 1:
        return found[0]
    if not found:
        raise InitError(
            "pass --source PATH (a .keras, .h5, SavedModel directory or .tflite) or "
            f"package.module:function: no model file is in {request.workspace}"
        )
    raise InitError(f"pass --source with the model to check, one of: {', '.join(found)}")


def _refuse_overwrite(request: InitRequest) -> None:
    if request.policy.is_dir():
        raise InitError(f"pass --policy a file path: {request.policy} is a directory")
    if request.policy.exists() and not request.force:
        raise InitError(
            f"pass --force to replace {request.policy}, or --variants to add variants to it: "
            "it exists"
        )


def _checked_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InitError(
            "pass --name with letters, digits and _ . - only, starting with a letter or a "
            f"digit: {name!r} cannot name a model (it is a file name in the artifacts)"
        )
    return name


def run_init(request: InitRequest, progress: Progress) -> InitOutcome:
    """Probe the model, write the starter policy (and its schema beside it), or say why not.

    With `--variants` and an existing policy (no `--force`), add those variants to it
    instead (`add_variants_to_policy`).
    """
    if request.variants is not None and request.policy.is_file() and not request.force:
        return add_variants_to_policy(request, progress)
    try:
        _refuse_overwrite(request)
        source = _source(request)
        name = _checked_name(request.name or model_name(source))
        variants = variant_entries(request.variants or ["float"])
        if source.endswith(".tflite") and request.variants not in (None, ["float"]):
            raise InitError("leave out --variants for a .tflite source: it is checked as it is")
    except InitError as error:
        return InitOutcome(2, [str(error)])
    probed = run_probe(
        request, probe_policy(name, source, variants, request.input_shapes), progress
    )
    if isinstance(probed, InitOutcome):
        return probed
    report = probed
    text = starter_policy(name, source, variants, request.input_shapes, report, request.margin)
    with owned_scratch("tflite-gate-init-") as scratch:
        candidate = Path(scratch) / "tflite-gate.yml"
        candidate.write_text(text, encoding="utf-8")
        try:
            check_starter(candidate, request.workspace, report)
        except (StarterError, PolicyError) as error:
            return internal_error(error)
    try:
        request.policy.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(request.policy, text)
        write_text_atomic(request.policy.parent / SCHEMA_FILE_NAME, schema_text("policy"))
    except OSError as error:
        return InitOutcome(4, [f"make {request.policy.parent} writable: {error.strerror or error}"])
    shown = display_path_for(request.policy, request.workspace)
    ops = len(used_ops(report.models[0]))
    return InitOutcome(
        0,
        written=request.policy,
        summary=f"Wrote {shown} ({len(variants)} variant(s), {ops} ops allowed, target_runtime "
        f"{needed_runtime(report.models[0]) or '-'}) and {SCHEMA_FILE_NAME} beside it; "
        "it passes on this machine: run `tflite-gate check`",
    )
