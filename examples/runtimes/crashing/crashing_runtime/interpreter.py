"""LiteRT's interpreter with a simulated kernel bug: negative inputs crash `invoke`.

Real runtime builds crash like this (a miscompiled kernel, an out-of-bounds read
on an unusual value). tflite-gate must report it as `interpreter-crash` with the
phase, the sample and the signal, and save a reproducer, without dying itself.
"""

import ctypes
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter as _LiteRtInterpreter


class Interpreter(_LiteRtInterpreter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_input = False

    def set_tensor(self, tensor_index: int, value: np.ndarray) -> None:
        self._negative_input = self._negative_input or bool(np.any(np.asarray(value) < 0))
        super().set_tensor(tensor_index, value)

    def invoke(self) -> None:
        if self._negative_input:
            ctypes.string_at(0)  # reads address 0: SIGSEGV, as a real kernel bug would
        super().invoke()
