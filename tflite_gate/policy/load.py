"""Reading the policy file: bounded, located, and checked to stay inside the workspace.

The policy comes from pull requests: it is read only when it is a regular file of a
size a policy needs, decoded as UTF-8, composed with bounds (`policy.positions`) and
validated against the schema (`policy.schema`), each problem at its line
(`policy.errors`). It must come back in well under a second: nothing here imports
TensorFlow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tflite_gate.findings import Location
from tflite_gate.policy.errors import PolicyError, PolicyIssue, issues_from_validation
from tflite_gate.policy.positions import (
    PathKey,
    SourceMap,
    YamlError,
    dotted,
    load_yaml_with_marks,
    mark_to_location,
)
from tflite_gate.policy.schema import (
    Policy,
    RuntimeEntry,
    Settings,
    is_factory,
    looks_like_path,
)
from tflite_gate.support.workspace_files import (
    SpecialFileError,
    require_regular_file,
    unreadable_message,
)

DEFAULT_POLICY_FILE = "tflite-gate.yml"


@dataclass(frozen=True)
class LoadedPolicy:
    """The validated policy, and where each of its values is written."""

    policy: Policy
    source_map: SourceMap
    display_path: str  # relative to the workspace when inside it, for annotations

    def location(self, path: PathKey, *, key: bool = False) -> Location:
        """Where the setting at `path` is written (its `key` rather than its value when
        asked); falls back to its parent block."""
        return mark_to_location(self.display_path, self.source_map.nearest(path, prefer_key=key))


def display_path_for(file: Path, workspace: Path) -> str:
    """How findings name the policy: relative to the workspace when it is inside it."""
    try:
        return file.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(file)


# Real policies are a few KB; PyYAML composes only a few hundred KB per second in
# pure Python, so a huge file from a pull request would hold the gate for minutes.
MAX_POLICY_BYTES = 256 * 1024


def _read_policy_text(file: Path, display: str, policy_option: str) -> str:
    """The policy's text, refused unparsed when it is larger than any policy needs."""
    require_regular_file(file)  # a FIFO would block the open below forever
    with open(file, "rb") as stream:
        data = stream.read(MAX_POLICY_BYTES + 1)
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            [
                PolicyIssue(
                    display,
                    None,
                    None,
                    f"shrink the policy below {MAX_POLICY_BYTES // 1024} KiB (the limit that "
                    f"keeps loading it fast) or check that {policy_option} names the policy "
                    "file: a policy needs a few KB, with settings shared by models written once "
                    "in `defaults`",
                )
            ]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError([_not_utf8(display, data, exc)]) from None


def _not_utf8(display: str, data: bytes, error: UnicodeDecodeError) -> PolicyIssue:
    """Point at the first byte that is not UTF-8, as an editor counts lines and columns."""
    before = data[: error.start]
    line = before.count(b"\n") + 1
    column = len(before) - (before.rfind(b"\n") + 1) + 1
    byte = data[error.start : error.start + 1].hex()
    return PolicyIssue(
        display,
        line,
        column,
        f"save the policy as UTF-8: byte 0x{byte} here is not UTF-8 text",
    )


_OTHER_YAML_SUFFIX = {".yml": ".yaml", ".yaml": ".yml"}


def _missing_policy_message(file: Path, workspace: Path, policy_option: str) -> str:
    """What to do when the policy file is not there: first contact, or a `.yaml`/`.yml` slip.

    The other spelling is named as the user would type it (relative to where they run
    the gate); an absolute path (the Action's) is shown relative to the workspace.
    """
    other_suffix = _OTHER_YAML_SUFFIX.get(file.suffix.lower())
    other = file.with_suffix(other_suffix) if other_suffix else None
    if other is not None and other.is_file():
        typed = display_path_for(other, workspace) if other.is_absolute() else str(other)
        return (
            f"did you mean {typed}? give {policy_option} {typed}, or rename it {file.name}: "
            "no such file"
        )
    shown = display_path_for(file, workspace) if file.is_absolute() else str(file)
    return (
        "run `tflite-gate init` to write a first policy (it checks the model once), or give "
        f"{policy_option} the policy's path: {shown} does not exist"
    )


def load_policy(file: Path, workspace: Path, *, policy_option: str = "--policy") -> LoadedPolicy:
    """Read and validate the policy, including that model paths stay in the workspace.

    `policy_option` is how the user names the policy file (the CLI's flag, the
    Action's input), for the messages that tell them to change it.
    """
    display = display_path_for(file, workspace)
    text = _policy_text(file, workspace, display, policy_option)
    data, source_map = _policy_mapping(text, display)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(issues_from_validation(exc, source_map, display)) from None
    loaded = LoadedPolicy(policy, source_map, display)
    _check_paths_inside(loaded, workspace)
    return loaded


def _policy_text(file: Path, workspace: Path, display: str, policy_option: str) -> str:
    """The file's text; a missing, special or unreadable file is the policy's one issue."""
    try:
        return _read_policy_text(file, display, policy_option)
    except FileNotFoundError:
        message = _missing_policy_message(file, workspace, policy_option)
    except SpecialFileError as exc:
        message = exc.message
    except OSError as exc:
        message = unreadable_message(exc)
    raise PolicyError([PolicyIssue(display, None, None, message)])


def _policy_mapping(text: str, display: str) -> tuple[dict[str, Any], SourceMap]:
    """The YAML's top-level mapping, and where each of its values sits."""
    try:
        data, source_map = load_yaml_with_marks(text)
    except YamlError as exc:
        issue = PolicyIssue.at(mark_to_location(display, exc.mark), exc.message)
        raise PolicyError([issue]) from None
    if data is None:
        problem = "the policy file is empty; expected `version: 1` and `models:`"
    elif not isinstance(data, dict):
        problem = f"expected a mapping at the top level, got {type(data).__name__}"
    else:
        return data, source_map
    raise PolicyError([PolicyIssue(display, 1, 1, problem)])


def resolve_inside(raw: str, workspace: Path) -> Path | None:
    """The absolute path for `raw`, or None if it leaves the workspace (also via symlinks)."""
    if Path(raw).is_absolute():
        return None
    root = workspace.resolve()
    candidate = (root / raw).resolve()
    try:
        candidate.relative_to(root)
    except ValueError:
        return None
    return candidate


# A file: URL alone, after `name @` or in a VCS URL (git+file:) names a local path.
_FILE_URL = re.compile(r"(^|[\s@+])file:", re.IGNORECASE)


def _check_paths_inside(loaded: LoadedPolicy, workspace: Path) -> None:
    """Every path the policy names stays in the workspace: a pull request's policy must
    not make the gate read (or pip install) files of the machine it runs on."""
    issues: list[PolicyIssue] = []

    def check(raw: str, path: PathKey, what: str) -> None:
        if resolve_inside(raw, workspace) is None:
            message = (
                f"{dotted(path)}: {what} {raw!r} is outside the workspace; paths are "
                "relative to the workspace root and must stay inside it"
            )
            issues.append(PolicyIssue.at(loaded.location(path), message))

    def check_requirement(requirement: str, path: PathKey) -> None:
        """pip reads paths and file: URLs: both must name something in the workspace."""
        if _FILE_URL.search(requirement):
            message = (
                f"{dotted(path)}: write the path relative to the workspace instead of the "
                f"file: URL {requirement!r}; runtimes install only from inside the workspace"
            )
            issues.append(PolicyIssue.at(loaded.location(path), message))
        elif looks_like_path(requirement):
            check(requirement, path, "runtime path")

    for index, model in enumerate(loaded.policy.models):
        if not is_factory(model.source):
            check(model.source, ("models", index, "source"), "source")
        if model.reference is not None and not is_factory(model.reference):
            check(model.reference, ("models", index, "reference"), "reference")
    for scope, settings in scopes(loaded.policy):
        for position, item in enumerate(settings.runtimes or []):
            requirement = item.requirement if isinstance(item, RuntimeEntry) else item
            where = (*scope, "runtimes", position)
            check_requirement(
                requirement, (*where, "requirement") if isinstance(item, RuntimeEntry) else where
            )
            for number, extra in enumerate(item.with_ if isinstance(item, RuntimeEntry) else []):
                check_requirement(extra, (*where, "with", number))
            for number, library in enumerate(
                item.custom_op_libraries if isinstance(item, RuntimeEntry) else []
            ):
                check(library, (*where, "custom_op_libraries", number), "custom-op library")
        for key in ("calibration", "evaluation"):
            value = getattr(settings.data, key) if settings.data else None
            if isinstance(value, str) and not is_factory(value):
                check(value, (*scope, "data", key), "data source")
    if issues:
        raise PolicyError(issues)


def scopes(policy: Policy) -> list[tuple[PathKey, Settings]]:
    """Where settings are written: `defaults`, then each model, with their data paths."""
    scopes: list[tuple[PathKey, Settings]] = [(("defaults",), policy.defaults)]
    scopes += [(("models", i), model) for i, model in enumerate(policy.models)]
    return scopes
