"""`python -m tflite_gate` and the `tflite-gate` script.

Signals are held before the gate is imported (about half a second): a CI job
cancelled that early still ends in a cancelled report, not a process killed with
nothing written. The process adopts the orphans of its workers and ends every
descendant still alive when it finishes.
"""

from tflite_gate.support.cancel import hold_signals


def main() -> int:
    """Hold SIGTERM/SIGINT, then run the command line; nothing it started outlives it."""
    hold_signals()
    from tflite_gate.support.lifetime import become_subreaper, end_descendants

    become_subreaper()
    try:
        from tflite_gate.cli import main as run_command_line

        return run_command_line()
    finally:
        end_descendants()


if __name__ == "__main__":
    raise SystemExit(main())
