"""`python -m tflite_gate.rules`: regenerate docs/rules.md from the rules' explanations."""

from tflite_gate.rules.docs import main

main()
