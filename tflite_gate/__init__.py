"""tflite-gate: a CI gate for TensorFlow → TFLite (LiteRT) conversion."""

__version__ = "0.1.0"
