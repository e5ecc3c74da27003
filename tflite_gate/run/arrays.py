"""Arrays handed from one process to another: named, in an .npz, never pickled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def save_npz(path: Path, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
    """Write named arrays (never pickled objects) for another process to read."""
    writer: Any = np.savez
    writer(path, **arrays)
