"""Minimum TFLite runtime version required by each builtin op version.

Why this exists: a converted ``.tflite`` model only runs on a TFLite/LiteRT
runtime that implements every ``(builtin op, op version)`` pair the model
uses.  TensorFlow keeps that knowledge in a C++ table that is compiled into
the converter and is not exposed to Python, so the gate carries its own copy
to tell a user *which* op forces a newer runtime ("FULLY_CONNECTED v12 needs
runtime 2.17.0") without importing TensorFlow.

Source (ported as data, every entry, unchanged):
    repository: tensorflow/tensorflow
    file:       tensorflow/compiler/mlir/lite/tools/versioning/runtime_version.cc
    function:   ``FindMinimumRuntimeVersionForOp`` (the ``op_version_map`` table)
    commit:     03f49db5a23ec2b22a59f3f3d72e5744469ea30b
    license:    Apache License 2.0, Copyright 2023 The TensorFlow Authors.

Keys use the flatbuffer schema enum name without the ``BuiltinOperator_``
prefix (e.g. ``"FULLY_CONNECTED"``), i.e. the names in
``ai_edge_litert.schema_py_generated.BuiltinOperator``.  The table has gaps
by design (e.g. ``BROADCAST_TO`` v1 was rolled back upstream and has no
entry); a missing entry means "unknown", never "any runtime".

When TensorFlow adds op versions this table goes stale; re-port it from a
newer commit rather than editing entries by hand.

Version comparison deliberately differs from upstream ``CompareRuntimeVersion``
in one respect: versions are padded to three parts, so ``"2.14"`` and
``"2.14.0"`` compare equal (upstream orders ``"2.14"`` before ``"2.14.0"``),
because users write target runtimes in either form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MIN_RUNTIME_BY_OP_VERSION",
    "OpRuntimeRequirement",
    "min_runtime_for_op",
    "ops_newer_than",
    "parse_runtime_version",
    "required_runtime",
    "runtime_version_less",
]

#: ``(builtin op name, op version) -> minimum runtime version``, ported
#: verbatim from ``FindMinimumRuntimeVersionForOp`` at the commit named in
#: the module docstring, in the upstream order.
MIN_RUNTIME_BY_OP_VERSION: dict[tuple[str, int], str] = {
    ("AVERAGE_POOL_2D", 1): "1.5.0",
    ("AVERAGE_POOL_2D", 2): "1.14.0",
    ("AVERAGE_POOL_2D", 3): "2.3.0",
    ("BATCH_MATMUL", 1): "2.3.0",
    ("BATCH_MATMUL", 2): "2.3.0",
    ("BATCH_MATMUL", 3): "2.4.0",
    ("BATCH_MATMUL", 4): "2.5.0",
    ("BROADCAST_TO", 2): "2.5.0",
    ("BROADCAST_TO", 3): "2.5.0",
    ("CONV_2D", 1): "1.5.0",
    ("CONV_2D", 2): "1.14.0",
    ("CONV_2D", 3): "1.14.0",
    ("CONV_2D", 4): "2.3.0",
    ("CONV_2D", 5): "2.4.0",
    ("CONV_2D", 6): "2.9.0",
    ("CONV_2D", 7): "2.11.0",
    ("CONV_2D", 8): "2.15.0",
    ("DEPTHWISE_CONV_2D", 1): "1.5.0",
    ("DEPTHWISE_CONV_2D", 2): "1.12.0",
    ("DEPTHWISE_CONV_2D", 3): "1.14.0",
    ("DEPTHWISE_CONV_2D", 4): "2.2.0",
    ("DEPTHWISE_CONV_2D", 5): "2.3.0",
    ("DEPTHWISE_CONV_2D", 6): "2.3.0",
    ("DEPTHWISE_CONV_2D", 7): "2.11.0",
    ("ADD", 1): "1.5.0",
    ("ADD", 2): "1.14.0",
    ("ADD", 3): "2.4.0",
    ("ADD", 4): "2.6.0",
    ("ADD", 5): "2.13.0",
    ("ADD", 6): "2.23.0",
    ("ADD_N", 1): "1.14.0",
    ("SPACE_TO_BATCH_ND", 1): "1.6.0",
    ("SPACE_TO_BATCH_ND", 2): "1.14.0",
    ("SPACE_TO_BATCH_ND", 3): "2.3.0",
    ("SPACE_TO_BATCH_ND", 4): "2.12.0",
    ("SUB", 1): "1.6.0",
    ("SUB", 2): "1.14.0",
    ("SUB", 3): "2.3.0",
    ("SUB", 4): "2.4.0",
    ("SUB", 5): "2.4.0",
    ("DENSIFY", 1): "2.2.0",
    ("DIV", 1): "1.6.0",
    ("DIV", 2): "2.3.0",
    ("BATCH_TO_SPACE_ND", 1): "1.6.0",
    ("BATCH_TO_SPACE_ND", 2): "1.14.0",
    ("BATCH_TO_SPACE_ND", 3): "2.3.0",
    ("BATCH_TO_SPACE_ND", 4): "2.12.0",
    ("CAST", 1): "1.5.0",
    ("CAST", 2): "2.7.0",
    ("CAST", 3): "2.8.0",
    ("CAST", 4): "2.9.0",
    ("CAST", 5): "2.12.0",
    ("CAST", 6): "2.15.0",
    ("CAST", 7): "2.17.0",
    ("CAST", 8): "2.21.0",
    ("CONCATENATION", 1): "1.5.0",
    ("CONCATENATION", 2): "1.14.0",
    ("CONCATENATION", 3): "2.3.0",
    ("CONCATENATION", 4): "2.14.0",
    ("CONCATENATION", 5): "2.21.0",
    ("DEPTH_TO_SPACE", 1): "2.1.0",
    ("DEPTH_TO_SPACE", 2): "2.5.0",
    ("EMBEDDING_LOOKUP", 1): "1.13.0",
    ("EMBEDDING_LOOKUP", 2): "1.14.0",
    ("EMBEDDING_LOOKUP", 3): "1.14.0",
    ("EMBEDDING_LOOKUP", 4): "2.18.0",
    ("EMBEDDING_LOOKUP", 5): "2.21.0",
    ("EMBEDDING_LOOKUP_SPARSE", 1): "1.5.0",
    ("FAKE_QUANT", 1): "1.5.0",
    ("FAKE_QUANT", 2): "1.10.0",
    ("FULLY_CONNECTED", 1): "1.5.0",
    ("FULLY_CONNECTED", 2): "1.10.0",
    ("FULLY_CONNECTED", 3): "1.14.0",
    ("FULLY_CONNECTED", 4): "1.14.0",
    ("FULLY_CONNECTED", 5): "2.0.0",
    ("FULLY_CONNECTED", 6): "2.1.0",
    ("FULLY_CONNECTED", 7): "2.3.0",
    ("FULLY_CONNECTED", 8): "2.3.0",
    ("FULLY_CONNECTED", 9): "2.3.0",
    ("FULLY_CONNECTED", 10): "2.11.0",
    ("FULLY_CONNECTED", 11): "2.15.0",
    ("FULLY_CONNECTED", 12): "2.17.0",
    ("FULLY_CONNECTED", 13): "2.18.0",
    ("FULLY_CONNECTED", 14): "2.21.0",
    ("GATHER", 1): "1.6.0",
    ("GATHER", 2): "1.14.0",
    ("GATHER", 3): "1.15.0",
    ("GATHER", 4): "2.4.0",
    ("GATHER", 5): "2.5.0",
    ("GATHER", 6): "2.13.0",
    ("GATHER", 7): "2.15.0",
    ("GATHER_ND", 1): "1.14.0",
    ("GATHER_ND", 2): "2.3.0",
    ("GATHER_ND", 3): "2.5.0",
    ("GATHER_ND", 4): "2.13.0",
    ("GATHER_ND", 5): "2.16.0",
    ("HASHTABLE_LOOKUP", 1): "1.5.0",
    ("SVDF", 1): "1.5.0",
    ("SVDF", 2): "1.14.0",
    ("SVDF", 3): "2.2.0",
    ("SVDF", 4): "2.3.0",
    ("L2_NORMALIZATION", 1): "1.5.0",
    ("L2_NORMALIZATION", 2): "1.14.0",
    ("L2_POOL_2D", 1): "1.5.0",
    ("LOCAL_RESPONSE_NORMALIZATION", 1): "1.5.0",
    ("MAX_POOL_2D", 1): "1.5.0",
    ("MAX_POOL_2D", 2): "1.14.0",
    ("MAX_POOL_2D", 3): "2.3.0",
    ("MAXIMUM", 1): "1.14.0",
    ("MAXIMUM", 2): "1.14.0",
    ("MAXIMUM", 3): "2.3.0",
    ("MAXIMUM", 4): "2.3.0",
    ("MINIMUM", 1): "1.14.0",
    ("MINIMUM", 2): "1.14.0",
    ("MINIMUM", 3): "2.3.0",
    ("MINIMUM", 4): "2.3.0",
    ("MUL", 1): "1.5.0",
    ("MUL", 2): "1.14.0",
    ("MUL", 3): "1.15.0",
    ("MUL", 4): "2.3.0",
    ("MUL", 5): "2.6.0",
    ("MUL", 6): "2.11.0",
    ("MUL", 7): "2.13.0",
    ("MUL", 8): "2.23.0",
    ("NON_MAX_SUPPRESSION_V4", 1): "2.1.0",
    ("NON_MAX_SUPPRESSION_V5", 1): "2.1.0",
    ("PAD", 1): "1.5.0",
    ("PAD", 2): "1.14.0",
    ("PAD", 3): "2.4.0",
    ("PAD", 4): "2.6.0",
    ("PAD", 5): "2.20.0",
    ("TILE", 1): "1.10.1",
    ("TILE", 2): "2.2.0",
    ("TILE", 3): "2.8.0",
    ("PADV2", 1): "1.9.0",
    ("PADV2", 2): "1.14.0",
    ("PADV2", 3): "2.4.0",
    ("PADV2", 4): "2.6.0",
    ("PADV2", 5): "2.20.0",
    ("RESHAPE", 1): "1.5.0",
    ("SOFTMAX", 1): "1.5.0",
    ("SOFTMAX", 2): "1.14.0",
    ("SOFTMAX", 3): "2.3.0",
    ("SPACE_TO_DEPTH", 1): "1.5.0",
    ("SPACE_TO_DEPTH", 2): "1.14.0",
    ("TRANSPOSE", 1): "1.6.0",
    ("TRANSPOSE", 2): "1.14.0",
    ("TRANSPOSE", 3): "1.15.0",
    ("TRANSPOSE", 4): "2.3.0",
    ("TRANSPOSE", 5): "2.4.0",
    ("TRANSPOSE", 6): "2.12.0",
    ("TRANSPOSE", 7): "2.14.4",
    ("TRANSPOSE", 8): "2.22.0",
    ("LSTM", 1): "1.7.0",
    ("LSTM", 2): "1.10.0",
    ("LSTM", 3): "1.14.0",
    ("LSTM", 4): "2.3.0",
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", 1): "1.13.1",
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", 2): "1.14.0",
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", 3): "2.3.0",
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", 4): "2.12.0",
    ("BIDIRECTIONAL_SEQUENCE_LSTM", 1): "1.14.0",
    ("BIDIRECTIONAL_SEQUENCE_LSTM", 2): "1.14.0",
    ("BIDIRECTIONAL_SEQUENCE_LSTM", 3): "1.14.0",
    ("BIDIRECTIONAL_SEQUENCE_RNN", 1): "1.14.0",
    ("BIDIRECTIONAL_SEQUENCE_RNN", 2): "1.14.0",
    ("BIDIRECTIONAL_SEQUENCE_RNN", 3): "2.3.0",
    ("MEAN", 1): "1.6.0",
    ("MEAN", 2): "1.14.0",
    ("MEAN", 3): "2.4.0",
    ("SUM", 1): "1.10.0",
    ("SUM", 2): "1.15.0",
    ("REDUCE_MAX", 1): "1.11.0",
    ("REDUCE_MAX", 2): "1.14.0",
    ("REDUCE_MAX", 3): "2.5.0",
    ("REDUCE_MIN", 1): "1.11.0",
    ("REDUCE_MIN", 2): "1.14.0",
    ("REDUCE_MIN", 3): "2.5.0",
    ("REDUCE_PROD", 1): "1.11.0",
    ("REDUCE_PROD", 2): "2.6.0",
    ("REDUCE_ANY", 1): "1.11.0",
    ("RELU6", 1): "1.5.0",
    ("RELU6", 2): "1.14.0",
    ("RELU6", 3): "2.5.0",
    ("RESIZE_BILINEAR", 1): "1.7.0",
    ("RESIZE_BILINEAR", 2): "1.14.0",
    ("RESIZE_BILINEAR", 3): "2.2.0",
    ("RESIZE_BILINEAR", 4): "2.5.0",
    ("RESIZE_NEAREST_NEIGHBOR", 1): "1.13.1",
    ("RESIZE_NEAREST_NEIGHBOR", 2): "1.14.0",
    ("RESIZE_NEAREST_NEIGHBOR", 3): "2.3.0",
    ("RESIZE_NEAREST_NEIGHBOR", 4): "2.4.0",
    ("RNN", 1): "1.5.0",
    ("RNN", 2): "1.14.0",
    ("RNN", 3): "2.3.0",
    ("SKIP_GRAM", 1): "1.5.0",
    ("SQUEEZE", 1): "1.6.0",
    ("SQUEEZE", 2): "2.5.0",
    ("SPLIT", 1): "1.5.0",
    ("SPLIT", 2): "1.14.0",
    ("SPLIT", 3): "1.14.0",
    ("SPLIT", 4): "2.3.0",
    ("SPLIT_V", 1): "1.13.1",
    ("SPLIT_V", 2): "2.3.0",
    ("STRIDED_SLICE", 1): "1.6.0",
    ("STRIDED_SLICE", 2): "1.14.0",
    ("STRIDED_SLICE", 3): "2.1.0",
    ("STRIDED_SLICE", 4): "2.2.0",
    ("STRIDED_SLICE", 5): "2.5.0",
    ("STRIDED_SLICE", 6): "2.6.0",
    ("STRIDED_SLICE", 7): "2.14.0",
    ("STRIDED_SLICE", 8): "2.14.0",
    ("TOPK_V2", 1): "1.7.0",
    ("TOPK_V2", 2): "1.14.0",
    ("TOPK_V2", 3): "2.13.0",
    ("ARG_MAX", 1): "1.9.0",
    ("ARG_MAX", 2): "1.14.0",
    ("ARG_MAX", 3): "2.9.0",
    ("ARG_MIN", 1): "1.9.0",
    ("ARG_MIN", 2): "1.14.0",
    ("ARG_MIN", 3): "2.9.0",
    ("TRANSPOSE_CONV", 1): "1.9.0",
    ("TRANSPOSE_CONV", 2): "2.2.0",
    ("TRANSPOSE_CONV", 3): "2.3.0",
    ("TRANSPOSE_CONV", 4): "2.13.0",
    ("TRANSPOSE_CONV", 5): "2.15.0",
    ("SPARSE_TO_DENSE", 1): "1.9.0",
    ("SPARSE_TO_DENSE", 2): "1.14.0",
    ("SPARSE_TO_DENSE", 3): "1.15.0",
    ("EXPAND_DIMS", 1): "1.10.0",
    ("PACK", 1): "1.11.0",
    ("PACK", 2): "1.14.0",
    ("PACK", 3): "2.3.0",
    ("PACK", 4): "2.13.0",
    ("SHAPE", 1): "1.10.0",
    ("SLICE", 1): "1.14.0",
    ("SLICE", 2): "1.14.0",
    ("SLICE", 3): "1.14.0",
    ("SLICE", 4): "2.4.0",
    ("SLICE", 5): "2.5.0",
    ("SLICE", 6): "2.14.0",
    ("SLICE", 7): "2.21.0",
    ("TANH", 1): "1.14.0",
    ("TANH", 2): "1.14.0",
    ("TANH", 3): "2.3.0",
    ("ONE_HOT", 1): "1.11.0",
    ("UNPACK", 1): "1.11.0",
    ("UNPACK", 2): "1.14.0",
    ("UNPACK", 3): "2.2.0",
    ("UNPACK", 4): "2.3.0",
    ("UNPACK", 5): "2.22.0",
    ("LEAKY_RELU", 1): "1.13.1",
    ("LEAKY_RELU", 2): "2.3.0",
    ("LOGISTIC", 1): "1.14.0",
    ("LOGISTIC", 2): "1.14.0",
    ("LOGISTIC", 3): "2.3.0",
    ("LOG_SOFTMAX", 1): "1.14.0",
    ("LOG_SOFTMAX", 2): "1.14.0",
    ("LSH_PROJECTION", 1): "1.5.0",
    ("SQUARED_DIFFERENCE", 1): "1.13.1",
    ("SQUARED_DIFFERENCE", 2): "2.5.0",
    ("MIRROR_PAD", 1): "1.13.1",
    ("MIRROR_PAD", 2): "2.3.0",
    ("MIRROR_PAD", 3): "2.12.0",
    ("UNIQUE", 1): "1.14.0",
    ("UNIDIRECTIONAL_SEQUENCE_RNN", 1): "1.14.0",
    ("UNIDIRECTIONAL_SEQUENCE_RNN", 2): "1.14.0",
    ("UNIDIRECTIONAL_SEQUENCE_RNN", 3): "2.3.0",
    ("WHERE", 1): "1.14.0",
    ("DEQUANTIZE", 1): "1.13.1",
    ("DEQUANTIZE", 2): "1.14.0",
    ("DEQUANTIZE", 3): "1.15.0",
    ("DEQUANTIZE", 4): "2.2.0",
    ("DEQUANTIZE", 5): "2.7.0",
    ("DEQUANTIZE", 6): "2.18.0",
    ("DEQUANTIZE", 7): "2.21.0",
    ("DEQUANTIZE", 8): "2.22.0",
    ("REVERSE_SEQUENCE", 1): "1.14.0",
    ("EQUAL", 1): "1.14.0",
    ("EQUAL", 2): "1.14.0",
    ("EQUAL", 3): "2.3.0",
    ("EQUAL", 4): "2.13.0",
    ("EQUAL", 5): "2.21.0",
    ("NOT_EQUAL", 1): "1.14.0",
    ("NOT_EQUAL", 2): "1.14.0",
    ("NOT_EQUAL", 3): "2.3.0",
    ("NOT_EQUAL", 4): "2.21.0",
    ("GREATER", 1): "1.14.0",
    ("GREATER", 2): "1.14.0",
    ("GREATER_EQUAL", 1): "1.14.0",
    ("GREATER_EQUAL", 2): "1.14.0",
    ("GREATER_EQUAL", 3): "2.13.0",
    ("LESS", 1): "1.14.0",
    ("LESS", 2): "1.14.0",
    ("LESS", 3): "2.13.0",
    ("LESS_EQUAL", 1): "1.14.0",
    ("LESS_EQUAL", 2): "1.14.0",
    ("SCATTER_ND", 1): "2.1.0",
    ("SEGMENT_SUM", 1): "2.2.0",
    ("SELECT", 1): "1.14.0",
    ("SELECT", 2): "1.14.0",
    ("SELECT", 3): "2.12.0",
    ("SELECT", 4): "2.12.0",
    ("SELECT_V2", 1): "2.2.0",
    ("SELECT_V2", 2): "2.12.0",
    ("IF", 1): "1.15.0",
    ("FLOOR_DIV", 1): "1.14.0",
    ("FLOOR_DIV", 2): "1.14.0",
    ("FLOOR_DIV", 3): "2.13.0",
    ("FLOOR", 1): "1.9.0",
    ("CEIL", 1): "1.14.0",
    ("MATRIX_DIAG", 1): "1.14.0",
    ("MATRIX_SET_DIAG", 1): "1.14.0",
    ("ELU", 1): "1.14.0",
    ("QUANTIZE", 1): "1.14.0",
    ("QUANTIZE", 2): "1.15.0",
    ("QUANTIZE", 3): "2.7.0",
    ("QUANTIZE", 4): "2.21.0",
    ("QUANTIZE", 5): "2.21.0",
    ("QUANTIZE", 6): "2.21.0",
    ("ROUND", 1): "1.14.0",
    ("RELU", 1): "1.5.0",
    ("RELU", 2): "2.1.0",
    ("RELU", 3): "2.5.0",
    ("RELU_N1_TO_1", 1): "1.5.0",
    ("RELU_0_TO_1", 1): "2.10.0",
    ("PRELU", 1): "1.8.0",
    ("EXP", 1): "1.7.0",
    ("EXP", 2): "2.12.0",
    ("COS", 1): "1.14.0",
    ("NEG", 1): "1.9.0",
    ("POW", 1): "1.10.0",
    ("LOGICAL_OR", 1): "1.11.0",
    ("LOGICAL_AND", 1): "1.11.0",
    ("LOGICAL_NOT", 1): "1.11.0",
    ("FLOOR_MOD", 1): "1.13.0",
    ("FLOOR_MOD", 2): "2.13.0",
    ("RANGE", 1): "1.13.0",
    ("RANGE", 2): "2.14.0",
    ("SIN", 1): "1.9.0",
    ("LOG", 1): "1.14.0",
    ("LOG", 2): "2.15.0",
    ("SQRT", 1): "1.10.0",
    ("SQRT", 2): "2.21.0",
    ("RSQRT", 1): "1.10.0",
    ("RSQRT", 2): "2.5.0",
    ("RSQRT", 3): "2.15.0",
    ("SQUARE", 1): "1.12.0",
    ("ZEROS_LIKE", 1): "1.12.0",
    ("ABS", 1): "1.13.0",
    ("ABS", 2): "2.4.0",
    ("ABS", 3): "2.5.0",
    ("ABS", 4): "2.6.0",
    ("ABS", 5): "2.12.0",
    ("HARD_SWISH", 1): "1.15.0",
    ("FILL", 1): "1.13.0",
    ("FILL", 2): "2.3.0",
    ("FILL", 3): "2.5.0",
    ("FILL", 4): "2.12.0",
    ("REVERSE_V2", 1): "1.14.0",
    ("REVERSE_V2", 2): "2.2.0",
    ("REVERSE_V2", 3): "2.5.0",
    ("RANK", 1): "1.14.0",
    ("WHILE", 1): "1.15.0",
    ("CUMSUM", 1): "2.4.0",
    ("CALL_ONCE", 1): "2.5.0",
    ("RFFT2D", 1): "2.5.0",
    ("CONV_3D", 1): "2.5.0",
    ("IMAG", 1): "2.5.0",
    ("REAL", 1): "2.5.0",
    ("COMPLEX_ABS", 1): "2.5.0",
    ("HASHTABLE", 1): "2.5.0",
    ("HASHTABLE_FIND", 1): "2.5.0",
    ("HASHTABLE_IMPORT", 1): "2.5.0",
    ("HASHTABLE_SIZE", 1): "2.5.0",
    ("REDUCE_ALL", 1): "2.6.0",
    ("CONV_3D_TRANSPOSE", 1): "2.6.0",
    ("VAR_HANDLE", 1): "2.6.0",
    ("READ_VARIABLE", 1): "2.6.0",
    ("ASSIGN_VARIABLE", 1): "2.6.0",
    ("BROADCAST_ARGS", 1): "2.6.0",
    ("RANDOM_STANDARD_NORMAL", 1): "2.8.0",
    ("BUCKETIZE", 1): "2.8.0",
    ("WHERE", 2): "2.8.0",
    ("RANDOM_UNIFORM", 1): "2.8.0",
    ("MULTINOMIAL", 1): "2.8.0",
    ("GELU", 1): "2.9.0",
    ("GELU", 2): "2.9.0",
    ("DYNAMIC_UPDATE_SLICE", 1): "2.9.0",
    ("DYNAMIC_UPDATE_SLICE", 2): "2.17.0",
    ("DYNAMIC_UPDATE_SLICE", 3): "2.19.0",
    ("DYNAMIC_UPDATE_SLICE", 4): "2.20.0",
    ("DYNAMIC_UPDATE_SLICE", 5): "2.21.0",
    ("DYNAMIC_UPDATE_SLICE", 6): "2.22.0",
    ("UNSORTED_SEGMENT_PROD", 1): "2.10.0",
    ("UNSORTED_SEGMENT_MAX", 1): "2.10.0",
    ("UNSORTED_SEGMENT_MIN", 1): "2.11.0",
    ("UNSORTED_SEGMENT_SUM", 1): "2.10.0",
    ("ATAN2", 1): "2.10.0",
    ("SIGN", 1): "2.11.0",
    ("SIGN", 2): "2.12.0",
    ("BITCAST", 1): "2.13.0",
    ("BITWISE_XOR", 1): "2.13.0",
    ("RIGHT_SHIFT", 1): "2.13.0",
    ("STABLEHLO_SCATTER", 1): "2.15.0",
    ("DILATE", 1): "2.15.0",
    ("STABLEHLO_RNG_BIT_GENERATOR", 1): "2.15.0",
    ("REDUCE_WINDOW", 1): "2.15.0",
    ("STABLEHLO_GATHER", 1): "2.16.0",
    ("STABLEHLO_ADD", 1): "2.16.0",
    ("STABLEHLO_MULTIPLY", 1): "2.16.0",
    ("STABLEHLO_REDUCE_WINDOW", 1): "2.16.0",
    ("STABLEHLO_MAXIMUM", 1): "2.16.0",
    ("STABLEHLO_MINIMUM", 1): "2.16.0",
    ("STABLEHLO_PAD", 1): "2.16.0",
    ("STABLEHLO_COMPOSITE", 1): "2.17.0",
    ("STABLEHLO_AND", 1): "2.17.0",
    ("STABLEHLO_SHIFT_LEFT", 1): "2.17.0",
    ("STABLEHLO_CBRT", 1): "2.17.0",
    ("STABLEHLO_CASE", 1): "2.17.0",
}

_VERSION_RE = re.compile(r"\d+(?:\.\d+)*", re.ASCII)
_MIN_PARTS = 3


def parse_runtime_version(text: str) -> tuple[int, ...]:
    """Parse a dotted runtime version into a tuple of ints for ordering.

    Padded with zeros to three parts (and trailing zero parts beyond the
    third are dropped) so that ``"2.14"``, ``"2.14.0"`` and ``"2.14.0.0"``
    are the same version: users and upstream metadata write both forms and
    a gate must not flag a model because of spelling.  Surrounding
    whitespace is ignored.

    Raises:
        ValueError: if ``text`` is not dot-separated non-negative integers
            (e.g. ``""``, ``"abc"``, ``"2."``, ``"2.14rc0"``), so that a typo
            in a target runtime fails loudly instead of comparing wrongly.
    """
    stripped = text.strip()
    if not _VERSION_RE.fullmatch(stripped):
        raise ValueError(
            f"invalid runtime version {text!r}: expected dot-separated "
            "non-negative integers such as '2.14' or '2.14.0'"
        )
    parts = [int(part) for part in stripped.split(".")]
    parts.extend([0] * (_MIN_PARTS - len(parts)))
    while len(parts) > _MIN_PARTS and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def runtime_version_less(a: str, b: str) -> bool:
    """Return True if runtime version ``a`` is strictly older than ``b``.

    Compares numerically part by part (so ``"2.9" < "2.14"``, which plain
    string comparison gets wrong).

    Raises:
        ValueError: if either version cannot be parsed.
    """
    return parse_runtime_version(a) < parse_runtime_version(b)


def min_runtime_for_op(op_name: str, version: int) -> str | None:
    """Return the minimum runtime for builtin ``op_name`` at ``version``.

    Returns None when the table has no entry (an op or version newer than
    the ported table, a custom op, or a gap such as ``BROADCAST_TO`` v1);
    the caller reports that as "unknown" rather than guessing.
    """
    return MIN_RUNTIME_BY_OP_VERSION.get((op_name, version))


@dataclass(frozen=True)
class OpRuntimeRequirement:
    """One ``(op, version)`` pair of a model and the runtime it needs.

    Frozen so requirements can be deduplicated, hashed and shared between
    report sections without defensive copies.
    """

    op: str
    version: int
    min_runtime: str

    def __str__(self) -> str:
        """Human-readable form used in gate messages."""
        return f"{self.op} v{self.version} needs runtime {self.min_runtime}"


def _requirements(ops: Iterable[tuple[str, int]]) -> list[OpRuntimeRequirement]:
    """Distinct requirements for ``ops``, most demanding runtime first.

    Ops without a table entry are skipped (the caller reports them as
    unknown separately).  Ties on the runtime are ordered by op name, then
    version, so reports are deterministic.
    """
    found: set[OpRuntimeRequirement] = set()
    for op_name, version in ops:
        min_runtime = min_runtime_for_op(op_name, version)
        if min_runtime is not None:
            found.add(OpRuntimeRequirement(op_name, version, min_runtime))
    # Two stable sorts: secondary key first, then the primary key descending.
    by_name = sorted(found, key=lambda req: (req.op, req.version))
    return sorted(by_name, key=lambda req: parse_runtime_version(req.min_runtime), reverse=True)


def required_runtime(
    ops: Iterable[tuple[str, int]],
) -> tuple[str | None, list[OpRuntimeRequirement]]:
    """Return the minimum runtime that runs all ``ops`` and why.

    Args:
        ops: ``(builtin op name, op version)`` pairs of a model; duplicates
            are allowed and collapsed.

    Returns:
        ``(highest, requirements)``: ``highest`` is the largest minimum
        runtime among ops that have a table entry (None if none do), and
        ``requirements`` holds one entry per distinct known ``(op, version)``
        sorted by minimum runtime descending, then op name, so the first
        item is the op that forces ``highest``.
    """
    requirements = _requirements(ops)
    highest = requirements[0].min_runtime if requirements else None
    return highest, requirements


def ops_newer_than(ops: Iterable[tuple[str, int]], target: str) -> list[OpRuntimeRequirement]:
    """Return the requirements that a runtime at version ``target`` cannot meet.

    These are the ops whose minimum runtime is strictly greater than
    ``target`` (an op needing exactly ``target`` is fine), in the same order
    as :func:`required_runtime`.  Ops without a table entry are not
    included; they are "unknown", not "too new".

    Raises:
        ValueError: if ``target`` is not a valid runtime version (checked
            even when ``ops`` is empty, so a bad config fails early).
    """
    target_version = parse_runtime_version(target)
    return [
        req for req in _requirements(ops) if parse_runtime_version(req.min_runtime) > target_version
    ]
