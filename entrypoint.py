"""The GitHub Action's entry point (the image's ENTRYPOINT): `tflite_gate.action.main.main`.

Signals are held before the gate is imported: a job cancelled while Python still
loads it ends in a cancelled report and outputs, not in a process killed with
nothing written. Nothing the step started outlives it.
"""

from tflite_gate.support.cancel import hold_signals

if __name__ == "__main__":
    hold_signals()
    from tflite_gate.support.lifetime import become_subreaper, end_descendants

    become_subreaper()
    try:
        from tflite_gate.action.main import main

        raise SystemExit(main())
    finally:
        end_descendants()
