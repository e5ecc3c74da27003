"""A stand-in for a buggy on-device runtime build (for the tflite-gate examples)."""
