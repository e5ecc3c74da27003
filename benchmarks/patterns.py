"""The hand-written ways to check a conversion, which the gate is measured against.

    python benchmarks/patterns.py naive MODEL.keras VARIANT SAMPLES
    python benchmarks/patterns.py floor MODEL.keras SAMPLES

naive: what a team writes first. One process per variant: import TensorFlow, load the
model, convert, the reference by calling the model eagerly on each sample, then the
interpreter on each sample.

floor: the fastest single process a careful engineer writes. Import TensorFlow and load
the model once, convert the three variants, one batched reference call, the
interpreter on every sample of every variant.

Both use the gate's data (uniform [0, 1), seed 0, calibration = evaluation samples),
the gate's interpreter (`ai_edge_litert`, 2 threads) and its quantization settings,
so the work is the same; each prints the worst max_abs per variant as a check.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

VARIANTS = ("float", "dynamic", "int8")


def _samples(model: Any, count: int) -> np.ndarray:
    shape = [count, *model.inputs[0].shape[1:]]
    return np.random.default_rng(0).uniform(0.0, 1.0, shape).astype(np.float32)


def _convert(model: Any, variant: str, samples: np.ndarray) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "int8":
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    blob: bytes = converter.convert()
    return blob


def _interpret(blob: bytes, samples: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob, num_threads=2)
    interpreter.allocate_tensors()
    feed = interpreter.get_input_details()[0]["index"]
    fetch = interpreter.get_output_details()[0]["index"]
    outputs = []
    for sample in samples:
        interpreter.set_tensor(feed, sample[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(fetch)[0].copy())
    return np.stack(outputs)


def naive(path: str, variant: str, count: int) -> None:
    import keras

    model = keras.models.load_model(path)
    samples = _samples(model, count)
    blob = _convert(model, variant, samples)
    reference = np.stack([np.asarray(model(sample[None]))[0] for sample in samples])
    outputs = _interpret(blob, samples)
    print(f"{variant}: max_abs {np.abs(outputs - reference).max():.3g}")


def floor(path: str, count: int) -> None:
    import keras

    model = keras.models.load_model(path)
    samples = _samples(model, count)
    blobs = {variant: _convert(model, variant, samples) for variant in VARIANTS}
    reference = model.predict(samples, batch_size=count, verbose=0)
    for variant, blob in blobs.items():
        outputs = _interpret(blob, samples)
        print(f"{variant}: max_abs {np.abs(outputs - reference).max():.3g}")


if __name__ == "__main__":
    if sys.argv[1] == "naive":
        naive(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        floor(sys.argv[2], int(sys.argv[3]))
