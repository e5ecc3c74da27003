"""Which input of a reference model each input of the .tflite under test feeds.

By the policy's `input_map` first, then by name (a converted tensor name
`serving_default_x:0` is `x`); a model with one input each pairs by position,
because a re-export renames `input` to `input_1` without changing what the model
takes. Several inputs that names do not pair are never guessed: the error says how
to write the `input_map`.

Pure Python: the gate pairs a .tflite reference's inputs, the conversion worker a
Keras/SavedModel/factory reference's (only it can load one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SERVING_PREFIX = "serving_default_"
INPUT_MAP_KEY = "input_map"


class PairingError(Exception):
    """Inputs that cannot be paired; `entry` is the `input_map` key at fault, if one is.

    `in_value`: the entry's value (the reference's input name) is at fault, not its key.
    """

    def __init__(self, message: str, entry: str | None = None, *, in_value: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.entry = entry
        self.in_value = in_value

    @property
    def policy_key(self) -> str:
        """The policy key at fault, as a worker reports it: `input_map.ENTRY` or `input_map`."""
        return f"{INPUT_MAP_KEY}.{self.entry}" if self.entry is not None else INPUT_MAP_KEY

    @classmethod
    def from_policy_key(cls, message: str, policy_key: str) -> PairingError:
        """The error a worker reported with `policy_key`, as it was raised.

        The gate checks the map's keys before a worker runs, so an entry a worker
        names is at fault in its value.
        """
        entry = policy_key.partition(".")[2] or None
        return cls(message, entry, in_value=entry is not None)


@dataclass(frozen=True)
class InputPairs:
    """The .tflite's input name → the reference's; `by_position` when names did not pair."""

    names: dict[str, str]
    by_position: bool = False


def same_input(a: str, b: str) -> bool:
    """Signature names or converted tensor names (`serving_default_x:0` is `x`)."""
    return _bare(a) == _bare(b)


def _bare(name: str) -> str:
    return name.split(":")[0].removeprefix(SERVING_PREFIX)


def _listed(names: list[str]) -> str:
    return ", ".join(names) or "none"


def check_map_keys(ours: list[str], input_map: Mapping[str, str]) -> None:
    """Every `input_map` key must be one of the .tflite's inputs (PairingError if not)."""
    for key in input_map:
        if not any(same_input(key, name) for name in ours):
            raise PairingError(
                f"{INPUT_MAP_KEY}: write one of the .tflite's inputs ({_listed(ours)}) "
                f"instead of {key!r}",
                key,
            )


def _mapped(ours: list[str], theirs: list[str], input_map: Mapping[str, str]) -> dict[str, str]:
    """The pairs the map writes, each value checked against the reference's inputs."""
    check_map_keys(ours, input_map)
    pairs: dict[str, str] = {}
    for key, value in input_map.items():
        partner = next((name for name in theirs if same_input(value, name)), None)
        if partner is None:
            raise PairingError(
                f"{INPUT_MAP_KEY}.{key}: write one of the reference's inputs "
                f"({_listed(theirs)}) instead of {value!r}",
                key,
                in_value=True,
            )
        pairs[next(name for name in ours if same_input(key, name))] = partner
    return pairs


def pair_inputs(ours: list[str], theirs: list[str], input_map: Mapping[str, str]) -> InputPairs:
    """Pair the .tflite's inputs (`ours`) with the reference's (`theirs`), or PairingError."""
    if len(ours) != len(theirs):
        raise PairingError(
            "use a reference that takes the .tflite's inputs: it takes "
            f"{len(theirs)} ({_listed(theirs)}), the .tflite {len(ours)} ({_listed(ours)})"
        )
    pairs = _mapped(ours, theirs, input_map)
    free = [name for name in theirs if name not in pairs.values()]
    for name in ours:
        if name not in pairs:
            partner = next((other for other in free if same_input(name, other)), None)
            if partner is not None:
                pairs[name] = partner
                free.remove(partner)
    unpaired = [name for name in ours if name not in pairs]
    if not unpaired:
        return InputPairs(pairs)
    if len(ours) == 1:
        return InputPairs({ours[0]: theirs[0]}, by_position=True)
    example = ", ".join(f"{a}: {b}" for a, b in zip(unpaired, free, strict=False))
    raise PairingError(
        f"pair the inputs in {INPUT_MAP_KEY} (the .tflite's input: the reference's), e.g. "
        f"{INPUT_MAP_KEY}: {{{example}}} (check the order): the reference's inputs "
        f"({_listed(theirs)}) are not the .tflite's ({_listed(ours)}) by name"
    )
