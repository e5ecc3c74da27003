"""Run a .tflite model on samples in a worker process: `python interpreter_worker/ REQUEST`.

Self-contained on purpose: the gate runs this directory by path under other
environments' Pythons (e.g. one with `tflite-runtime==2.14.0` and numpy 1.x)
where tflite_gate is not installed, so its modules import only the standard
library, numpy, the runtime module named in the request, and each other
(relatively), and keep to Python 3.8 / numpy 1.x syntax and APIs at runtime.
`__main__.py` loads them as a package of their own name, with this directory off
`sys.path`.

Before each phase the worker appends a line to the status file and flushes it, so
when the runtime segfaults, aborts, hangs or is killed for memory, the parent still
knows the phase and sample it died in. Python exceptions are caught and written to
the result file; the exit code is 0 whenever a result was written.

The request and the result are the dataclasses in `messages.py`: the gate
validates them with pydantic, and the worker, which has no pydantic, checks its
request against the same fields with `messages.checked`.
"""
