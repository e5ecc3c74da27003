"""Allow `python -m tflite_gate`."""

from tflite_gate.cli import main

raise SystemExit(main())
