"""How fast the gate checks a conversion, against hand-written checks, in one run.

    python benchmarks/speed.py [--out benchmarks/RESULTS.md] [--quick]

Measured on one machine in one run (ratios only mean something within a run):

- naive: `patterns.py naive`, one process per variant (3 processes);
- floor: `patterns.py floor`, one careful process;
- gate cold: `tflite-gate check` with an empty cache;
- gate warm: the same command again;
- invalid policy: `tflite-gate check` on a policy with one bad value (median of 5);
- scaling: the gate (cold, `--no-cache`) on a small model with 16/64/256 samples,
  1/3/5 variants and 1/4/8 models.

The model is Keras MobileNetV2 (`weights=None`, 224x224, built here), variants float,
dynamic and int8, 32 evaluation samples. Peak memory is the largest sum of the RSS
of a run's whole process tree, sampled every 50 ms. `--quick` swaps MobileNetV2 for
the small model and skips the scaling runs (a smoke test of this script).
The table goes to `--out`, and README's Performance section holds a copy.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = 32
VARIANTS = {
    "float": "none",
    "dynamic": "dynamic",
    "int8": "int8",
    "half": "float16",
    "int16x8": "int16x8",
}
BUILD = """\
import sys, keras
keras.utils.set_random_seed(0)
kind, path = sys.argv[1], sys.argv[2]
if kind == "mobilenet":
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
else:
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35)
model.save(path)
"""
INVALID_POLICY = """\
version: 1
models:
  - {name: m, source: m.keras, variants: [{name: q, quantization: int4}]}
"""


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_mb: float


def _tree_rss_mb(root: int) -> float:
    """The resident memory of `root` and all its descendants, now."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for path in Path("/proc").iterdir():
        entry = path.name
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as status:
                line = next((s for s in status if s.startswith("VmRSS:")), "VmRSS: 0 kB")
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
        rss[int(entry)] = int(line.split()[1]) / 1024
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0.0)
        pending += children.get(pid, [])
    return total


def measure(
    argv: list[str], *, expect: frozenset[int] = frozenset({0}), cwd: Path | None = None
) -> Measurement:
    """Wall-clock seconds and the peak RSS of the whole process tree of one command."""
    peak = 0.0
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    stream = process.stdout
    assert stream is not None
    reader = threading.Thread(target=lambda: output.append(stream.read()))
    reader.start()
    while process.poll() is None:
        peak = max(peak, _tree_rss_mb(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    reader.join()
    if process.returncode not in expect:
        raise SystemExit(
            f"{' '.join(argv)} exited {process.returncode}:\n{''.join(output)[-3000:]}"
        )
    return Measurement(seconds, peak)


def _policy(models: list[str], variants: list[str], samples: int) -> str:
    lines = [
        "version: 1",
        "defaults:",
        "  max_divergence: {min_cosine: 0.0}  # timing, not judging",
        "  data:",
        f"    samples: {samples}",
        "    calibration: {generate: {seed: 0, low: 0.0, high: 1.0}}",
        "    evaluation: {generate: {seed: 0, low: 0.0, high: 1.0}}",
        "models:",
    ]
    for index, source in enumerate(models):
        lines += [f"  - name: m{index}", f"    source: {source}", "    variants:"]
        lines += [f"      - {{name: {v}, quantization: {VARIANTS[v]}}}" for v in variants]
    return "\n".join(lines) + "\n"


def _gate(workspace: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tflite_gate",
        "check",
        "--workspace",
        str(workspace),
        "--report",
        str(workspace / "report.json"),
        "--cache-dir",
        str(cache),
        "--quiet",
        *extra,
    ]


def _build(kind: str, path: Path) -> None:
    subprocess.run([sys.executable, "-c", BUILD, kind, str(path)], check=True, capture_output=True)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    tf = importlib.metadata.version("tensorflow")
    litert = importlib.metadata.version("ai-edge-litert")
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GB RAM, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, TensorFlow {tf}, "
        f"ai-edge-litert {litert}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tflite-gate-bench-") as temporary:
        root = Path(temporary)
        main_model = root / "main" / "model.keras"
        main_model.parent.mkdir()
        _build("small" if args.quick else "mobilenet", main_model)
        small = root / "small.keras"
        _build("small", small)

        _say("naive: one process per variant")
        patterns = [sys.executable, str(HERE / "patterns.py")]
        naive_runs = [
            measure([*patterns, "naive", str(main_model), v, str(SAMPLES)])
            for v in ("float", "dynamic", "int8")
        ]
        naive = Measurement(sum(m.seconds for m in naive_runs), max(m.peak_mb for m in naive_runs))
        _say("floor: one process")
        floor = measure([*patterns, "floor", str(main_model), str(SAMPLES)])
        workspace = main_model.parent
        (workspace / "tflite-gate.yml").write_text(
            _policy(["model.keras"], ["float", "dynamic", "int8"], SAMPLES)
        )
        _say("gate cold")
        cold = measure(_gate(workspace, root / "cache"))
        _say("gate warm")
        warm = measure(_gate(workspace, root / "cache"))
        invalid_workspace = root / "invalid"
        invalid_workspace.mkdir()
        (invalid_workspace / "tflite-gate.yml").write_text(INVALID_POLICY)
        invalid = statistics.median(
            measure(_gate(invalid_workspace, root / "cache"), expect=frozenset({2})).seconds
            for _ in range(5)
        )
        name = "MobileNetV2 224" if not args.quick else "MobileNetV2 0.35 96 (quick)"
        rows += [
            (
                f"naive: 3 processes ({name}, 3 variants, {SAMPLES} samples)",
                f"{naive.seconds:.1f} s",
                f"{naive.peak_mb:.0f} MB",
            ),
            ("floor: one hand-tuned process", f"{floor.seconds:.1f} s", f"{floor.peak_mb:.0f} MB"),
            ("gate, cold (empty cache)", f"{cold.seconds:.1f} s", f"{cold.peak_mb:.0f} MB"),
            ("gate, warm (same command again)", f"{warm.seconds:.1f} s", f"{warm.peak_mb:.0f} MB"),
            ("gate, invalid policy (median of 5)", f"{invalid:.2f} s", "-"),
        ]
        ratios = [
            ("gate cold / naive", cold.seconds / naive.seconds, "≤ 0.35"),
            ("gate cold / floor", cold.seconds / floor.seconds, "≤ 0.6"),
            ("gate warm / cold", warm.seconds / cold.seconds, "≤ 0.10"),
            ("invalid policy, s", invalid, "< 0.5"),
            ("peak memory, gate cold / floor", cold.peak_mb / floor.peak_mb, "≤ 1.5"),
        ]
        scaling: list[tuple[str, str, str]] = []
        if not args.quick:
            scaling = _scaling(root, small)
    table = _markdown(rows, ratios, scaling)
    args.out.write_text(table)
    print(table)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _scaling(root: Path, small: Path) -> list[tuple[str, str, str]]:
    rows = []
    cases = [
        ("samples", n, ["small.keras"], ["float", "dynamic", "int8"], n) for n in (16, 64, 256)
    ]
    cases += [("variants", n, ["small.keras"], list(VARIANTS)[:n], 32) for n in (1, 3, 5)]
    cases += [
        ("models", n, [f"small{i}.keras" for i in range(n)], ["float"], 32) for n in (1, 4, 8)
    ]
    for axis, count, models, variants, samples in cases:
        workspace = root / f"scale-{axis}-{count}"
        workspace.mkdir()
        for source in models:
            (workspace / source).write_bytes(small.read_bytes())
        (workspace / "tflite-gate.yml").write_text(_policy(models, variants, samples))
        _say(f"scaling: {axis} {count}")
        # Timing, not judging: a finding (int16x8 MobileNetV2 fails to prepare) is exit 1.
        run = measure(_gate(workspace, root / "cache", "--no-cache"), expect=frozenset({0, 1}))
        rows.append((f"{axis} = {count}", f"{run.seconds:.1f} s", f"{run.peak_mb:.0f} MB"))
    return rows


def _markdown(
    rows: list[tuple[str, str, str]],
    ratios: list[tuple[str, float, str]],
    scaling: list[tuple[str, str, str]],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        f"Measured {when} by `python benchmarks/speed.py` on {_machine()}.",
        "",
        "| run | time | peak memory |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        "| ratio | measured | target |",
        "|---|---|---|",
        *(f"| {name} | {value:.2f} | {target} |" for name, value, target in ratios),
    ]
    if scaling:
        lines += [
            "",
            "Scaling (gate, `--no-cache`, MobileNetV2 alpha 0.35 96x96; samples: 3 variants; "
            "variants: float, dynamic, int8, float16, int16x8 in that order; models: float "
            "only; 32 samples unless varied):",
            "",
            "| case | time | peak memory |",
            "|---|---|---|",
            *(f"| {a} | {b} | {c} |" for a, b, c in scaling),
        ]
    return textwrap.dedent("\n".join(lines)) + "\n"


if __name__ == "__main__":
    main()
