"""Where a run happens: package versions and the machine's memory.

Read from metadata, never by importing TensorFlow, and light to import: a report for
a bad policy needs it before anything heavy is loaded.
"""

from __future__ import annotations

import contextlib
import os
from importlib import metadata
from pathlib import Path

ENVIRONMENT_PACKAGES = ("tensorflow", "ai-edge-litert", "keras", "numpy", "tflite-gate")
# TensorFlow ships one `tensorflow` module under several distribution names; the
# Action's image has the CPU build (the same converter, without CUDA kernels).
_SAME_PACKAGE = {"tensorflow": ("tensorflow", "tensorflow-cpu")}


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, read from metadata (no import).

    `tensorflow` is also found as `tensorflow-cpu`: a policy asking for a TensorFlow
    version means the module, whichever build provides it.
    """
    for name in _SAME_PACKAGE.get(distribution.lower(), (distribution,)):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


# A worker may use half of the machine's memory (or of its cgroup's limit): enough for
# real conversions (MobileNet peaks near 1 GB), not enough for an inflating model to
# take the runner down. Capped, so a shared big machine is protected too.
MEMORY_FRACTION = 0.5
MIN_DEFAULT_MEMORY_MB = 1024
MAX_DEFAULT_MEMORY_MB = 8192


def machine_memory_mb() -> int | None:
    """Memory this process can have: physical memory, lowered by a cgroup (v2 or v1) limit."""
    limits: list[int] = []
    with contextlib.suppress(ValueError, OSError, AttributeError):  # not every OS has them
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20)
    for control in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(control).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means no limit; v1 writes a huge number instead
            limits.append(int(text) // 2**20)
    positive = [limit for limit in limits if limit > 0]
    return min(positive) if positive else None


def default_memory_mb(total_mb: int | None) -> int:
    """The worker memory limit where the policy writes none: a share of `total_mb`, capped."""
    if total_mb is None:
        return MAX_DEFAULT_MEMORY_MB
    share = int(total_mb * MEMORY_FRACTION)
    return min(max(share, MIN_DEFAULT_MEMORY_MB), MAX_DEFAULT_MEMORY_MB)
