"""The worker's status file: where it is, flushed before each phase, to outlive a crash."""

from __future__ import annotations

import json
from typing import IO, Any


class Status:
    """JSON lines, flushed before each phase: the last line survives a crash."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.phase = "start"
        self.sample: int | None = None

    def mark(self, phase: str, sample: int | None = None, batch: int = 1) -> None:
        """Say the worker enters `phase` (for `sample`, or `batch` samples from it)."""
        self.phase, self.sample = phase, sample
        entry: dict[str, Any] = {"phase": phase}
        if sample is not None:
            entry["sample"] = sample
        if batch > 1:  # samples `sample` .. `sample + batch - 1` in one invoke
            entry["batch"] = batch
        self.handle.write(json.dumps(entry) + "\n")
        self.handle.flush()
