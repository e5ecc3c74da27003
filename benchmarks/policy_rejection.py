"""How fast an invalid policy is rejected, against `import tensorflow` on this machine.

Run: python benchmarks/policy_rejection.py [RUNS]
Prints wall-clock medians of RUNS fresh processes and their ratio; a bad policy must
be rejected before TensorFlow is imported, so the ratio should stay well below 1.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAD_POLICY = (
    "version: 1\n"
    "models:\n"
    "  - name: m\n"
    "    source: m.keras\n"
    "    variants: [{name: q, quantization: int4}]\n"
)


def _median_seconds(argv: list[str], runs: int, expect: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(argv, capture_output=True, check=False)
        samples.append(time.perf_counter() - started)
        if completed.returncode != expect:
            raise SystemExit(f"{argv} exited {completed.returncode}: {completed.stderr.decode()}")
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as workspace:
        (Path(workspace) / "tflite-gate.yml").write_text(BAD_POLICY)
        gate = [
            sys.executable,
            "-m",
            "tflite_gate",
            "check",
            "--workspace",
            workspace,
            "--report",
            str(Path(workspace) / "r.json"),
        ]
        rejected = _median_seconds(gate, runs, expect=2)
    tensorflow = _median_seconds([sys.executable, "-c", "import tensorflow"], runs, expect=0)
    print(f"invalid policy rejected (exit 2): median {rejected:.3f} s over {runs} runs")
    print(f"python -c 'import tensorflow':    median {tensorflow:.3f} s over {runs} runs")
    print(f"ratio rejection / import tensorflow: {rejected / tensorflow:.2f}")


if __name__ == "__main__":
    main()
