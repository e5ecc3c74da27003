"""The long explanation of every rule: what it means, why it fires, how to fix it, an example.

`tflite-gate explain RULE` prints one; the SARIF rule's help (code scanning shows it
beside the alert) and `docs/rules.md`, which findings link to, are made from them.
Every rule id in `RULES` has an entry here (a test enforces it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Explanation:
    meaning: str
    causes: tuple[str, ...]
    fix: tuple[str, ...]
    example: str  # a minimal policy or message that shows the rule, fenced as YAML


EXPLANATIONS: dict[str, Explanation] = {
    "policy-invalid": Explanation(
        "The policy file (or a value in it) cannot be used, so no model was checked.",
        (
            "A typo in a key: unknown keys are errors, so a misspelt threshold cannot "
            "silently turn a check off.",
            "A value of the wrong type or out of range (`memory_mb: 10`, `quantization: int4`).",
            "A path outside the workspace, a duplicate model or variant name, an invalid "
            "version specifier.",
        ),
        (
            "Fix the value at the file:line:column the message gives; the message says "
            "what was expected.",
            "Let your editor check the file as you type: `tflite-gate schema policy`.",
        ),
        "models:\n  - name: classifier\n    source: model.keras\n"
        "    quantize: int8        # policy-invalid: unknown key; quantization is set per variant",
    ),
    "model-not-found": Explanation(
        "The model's `source` names a file, directory or factory that does not exist.",
        (
            "A path relative to something else than the workspace root.",
            "A factory written with a dot instead of a colon (`nets.build` for `nets:build`).",
            "A model file kept in Git LFS and not checked out (`lfs: true` in actions/checkout).",
        ),
        ("Write the path relative to the workspace root, or `package.module:function`.",),
        "models:\n  - name: detector\n    source: models/detector.keras   # relative to the repo",
    ),
    "model-load-failed": Explanation(
        "The source exists but TensorFlow or Keras could not load it.",
        (
            "A module the factory or the model's custom objects import is not installed "
            "where the gate runs.",
            "A Keras 2 file (.h5, or a SavedModel written by TF <= 2.15) without a matching "
            "tf-keras.",
            "A weights-only .h5 (no architecture to load).",
            "A factory that raised, or returned something that is not a model.",
            "Dynamic non-batch dimensions without `input_shapes`.",
            "The conversion worker ran out of time or memory while loading (the message names "
            "the limit), or crashed.",
        ),
        (
            "Install the package that provides the missing module next to the gate (the "
            "Action's image holds the gate's own packages only).",
            "Install `tf-keras` matching TensorFlow's major.minor for Keras 2 models.",
            "For weights only, write a factory that builds the model and loads the weights.",
            "Declare the sizes your app feeds in `input_shapes`, keeping the batch at 1.",
            "Raise `limits.timeout_s` or `limits.memory_mb` if the model just needs more.",
        ),
        "models:\n  - name: asr\n    source: nets.asr:build\n"
        "    input_shapes: {audio: [1, 16000]}   # the sizes the app feeds",
    ),
    "conversion-failed": Explanation(
        "The TFLite converter refused the model, or crashed while converting a variant.",
        (
            "An op with no TFLite builtin (needs Select TF ops or a custom op).",
            "An RNN's TensorList ops with a dynamic batch.",
            "An op the chosen quantization has no kernel for (PRELU in 16x8).",
            "Calibration data the int8 converter cannot use.",
            "A converter crash (a bug in the converter: the message names the signal) or a "
            "time or memory limit reached (the message names the limit).",
        ),
        (
            "Follow the message: it leads with the fix and points at the model code line "
            "that created the op.",
            "Set a fixed batch in `input_shapes`; replace the op; for an op that has a Select "
            "TF version, allow Select TF ops (`ops.select_tf_ops: true`) if the app links "
            "the Flex delegate.",
            "For an op the quantization cannot handle, or a converter crash, choose another "
            "quantization for the variant (or another TensorFlow version).",
        ),
        "models:\n  - name: lstm\n    source: model.keras\n"
        "    input_shapes: {x: [1, 20, 8]}   # a fixed batch lowers the TensorList ops",
    ),
    "converter-warning": Explanation(
        "The conversion succeeded but the converter logged something worth reading.",
        (
            "An op fell back to float in a quantized variant.",
            "An op became a Flex or custom op.",
            "A resource variable or an unsupported attribute was ignored.",
        ),
        (
            "Read the converter's line in the finding; if the fallback is acceptable, "
            "nothing else needs to change (warnings fail only with `fail_on: warning`).",
        ),
        "fail_on: error     # converter warnings are reported, not failed",
    ),
    "op-not-allowed": Explanation(
        "The converted model contains a builtin op outside `ops.allow`, or in `ops.deny`.",
        (
            "A layer the target runtime or the accelerator does not support.",
            "QUANTIZE and DEQUANTIZE in an int8 or int16x8 variant with float32 inputs and "
            "outputs: they convert at the model's edges (DEQUANTIZE also turns a float16 "
            "variant's weights into float32).",
            "SHAPE, PACK and STRIDED_SLICE emitted for a dynamic batch.",
        ),
        (
            "Change the model to avoid the op, or add it to `ops.allow` if the runtime has it "
            "(`tflite-gate suggest` writes the list each variant needs).",
            "For QUANTIZE and DEQUANTIZE at the edges: `io: int8` (`io: int16` for int16x8) if "
            "the app feeds and reads integers.",
            "For shape ops: a fixed batch in `input_shapes` removes them.",
        ),
        "defaults:\n  ops:\n    allow: [CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, SOFTMAX]",
    ),
    "flex-op": Explanation(
        "The model needs Select TF (Flex) ops: TensorFlow kernels linked into the app.",
        (
            "An op with no TFLite builtin (tf.Svd, tf.Erf in old versions, string ops).",
            "A string-input model that standardizes and splits its text (a default "
            "TextVectorization: tf.StringLower, tf.StaticRegexReplace, tf.StringSplitV2): "
            "no builtin-only model can be made of it.",
            "`ops.select_tf_ops: true` was left on after the op was removed elsewhere.",
        ),
        (
            "Replace the op with builtin ones (the message names it and the code line).",
            "For text: standardize and split in the app and feed the tokens; StringLookup "
            "and TextVectorization(standardize=None, split=None) convert to builtin "
            "HASHTABLE ops.",
            "Or accept Flex: `ops.select_tf_ops: true`, and run the variant on a runtime "
            "that links the Flex delegate (e.g. `tensorflow==2.18.*`).",
        ),
        "defaults:\n  ops: {select_tf_ops: true}\n  runtimes: [ai-edge-litert, "
        '"tensorflow==2.18.*"]',
    ),
    "custom-op": Explanation(
        "The model contains an op the app must implement and register itself.",
        (
            "A custom layer converted with `allow_custom_ops`.",
            "MediaPipe or vendor ops (e.g. Convolution2DTransposeBias).",
        ),
        (
            "List the op in `ops.custom` once the app registers it.",
            "Give a runtime its kernels (`custom_op_registerers`, `custom_op_libraries`) "
            "so the gate can run and compare the model.",
        ),
        "defaults:\n  ops: {custom: [GateAddOne]}\n  runtimes:\n"
        "    - {requirement: ai-edge-litert, custom_op_registerers: [RegisterGateAddOne],\n"
        "       custom_op_libraries: [ops/libgate_ops.so]}",
    ),
    "runtime-too-old": Explanation(
        "An op version in the model needs a newer TFLite/LiteRT runtime than "
        "`versions.target_runtime`.",
        (
            "A newer converter emits newer op versions (FULLY_CONNECTED v12 for a "
            "dynamic-range Dense needs 2.17).",
            "A quantization mode whose kernels came later (int16x8).",
        ),
        (
            "Raise `versions.target_runtime` if every device runs the newer runtime.",
            "Or pick a variant whose ops the old runtime has (another quantization mode), "
            "or pin an older converter.",
        ),
        'defaults:\n  versions: {target_runtime: "2.14"}',
    ),
    "version-mismatch": Explanation(
        "An installed package is outside the version range the policy requires.",
        ("The CI image or lock file moved on; a local install differs from CI.",),
        ("Install a version inside the specifier, or change the specifier.",),
        'defaults:\n  versions: {tensorflow: ">=2.16,<2.22"}',
    ),
    "data-invalid": Explanation(
        "Representative data (calibration or evaluation) does not fit the model's inputs.",
        (
            "Arrays keyed by another name than the model's inputs.",
            "A wrong sample shape or dtype, NaN or Inf values.",
            "A generator that raised, hung, or yielded something other than a dict.",
            "A string input without data (random strings are not text the model knows), or "
            "strings saved in a .npz as dtype=object (reading them needs unpickling).",
        ),
        (
            "Give one array per input, keyed by input name, first axis = samples, with the "
            "model's dtype; or let the gate generate data with `{generate: {...}}`.",
            "For a string input: bytes or str arrays (np.array(texts, dtype=str)) in a .npz, "
            "or a generator yielding bytes, str or object arrays of them; str is fed as UTF-8.",
        ),
        "models:\n  - name: classifier\n    source: model.keras\n"
        "    data: {calibration: data/calibration.npz, evaluation: data/eval.npz}",
    ),
    "runtime-unavailable": Explanation(
        "A runtime named in `runtimes` could not be installed or imported.",
        (
            "A requirement pip cannot resolve for this Python (tflite-runtime has no "
            "Python 3.12 wheels).",
            "A missing extra requirement (`with: ['numpy<2']`).",
            "No network to the package index.",
        ),
        ("Fix the requirement string or its `with:` list; the message has pip's own words.",),
        'runtimes:\n  - {requirement: "tflite-runtime==2.14.0", with: ["numpy<2"]}',
    ),
    "unfrozen-variables": Explanation(
        "The converted model reads resource variables that nothing initialises.",
        ("A concrete function converted without its variables being frozen.",),
        ("Convert from the Keras model or a SavedModel that holds the variables.",),
        "models:\n  - name: counter\n    source: saved_model_dir/   # keeps the variables",
    ),
    "interpreter-error": Explanation(
        "The runtime raised an error while loading, allocating or invoking the model.",
        (
            '"Didn\'t find op for builtin opcode ... version N": the runtime is older than '
            "the converter.",
            '"unresolved custom op": no kernel is registered for it.',
            "An input shape the model cannot take.",
        ),
        (
            "Set `versions.target_runtime` to catch old runtimes at inspection time, or "
            "register the custom op's kernel; the message has the runtime's own words.",
        ),
        'defaults:\n  versions: {target_runtime: "2.14"}',
    ),
    "interpreter-crash": Explanation(
        "The interpreter process died (segfault, abort, memory kill) on this model.",
        ("A runtime bug, a broken model, or a custom op kernel that crashes.",),
        (
            "Run the reproducer the gate saved (model, failing sample, a plain script) and "
            "report it to the runtime; raise `limits.memory_mb` if the message says memory.",
        ),
        "defaults:\n  limits: {memory_mb: 4096}",
    ),
    "interpreter-timeout": Explanation(
        "The interpreter did not finish within `limits.interpreter_timeout_s`.",
        ("A very slow model on the CI machine, or a runtime that hangs.",),
        ("Raise the timeout if the model is just slow; otherwise run the reproducer.",),
        "defaults:\n  limits: {interpreter_timeout_s: 300}",
    ),
    "output-mismatch": Explanation(
        "The converted model's outputs cannot be paired with the source model's.",
        (
            "Outputs renamed or reordered by the conversion, or a different output count.",
            "A reference whose outputs are not the .tflite's.",
        ),
        ("Name the outputs in the source model (Keras layer names) so signatures match.",),
        "models:\n  - name: m\n    source: model.tflite\n    reference: model.keras",
    ),
    "divergence": Explanation(
        "A variant's outputs differ from the source model's by more than a threshold.",
        (
            "Quantization error: too few or unrepresentative calibration samples, "
            "sensitive layers quantized.",
            "A threshold tighter than float arithmetic allows across CPUs.",
            "A `.tflite` source without `reference:` on several runtimes: a runtime computes "
            "other numbers than the first one listed (the message names both).",
        ),
        (
            "Use calibration data from the real input distribution, or keep sensitive "
            "layers in float: for an int8 variant the report's `diagnosis` (and the job "
            "summary) names the layers that add the error and a `keep_float` set that was "
            "converted, run and found to pass.",
            "If the accuracy is acceptable, loosen the threshold: `tflite-gate suggest` "
            "prints values that pass with a margin, where they belong in the policy.",
        ),
        "variants:\n  - name: int8\n    quantization: int8\n"
        "    max_divergence: {min_cosine: 0.99, min_top1: 0.95}\n"
        "    keep_float: {nodes: [model/dense_1/MatMul;model/dense_1/Relu]}",
    ),
    "non-finite": Explanation(
        "An output contains NaN or Inf where the source model's does not.",
        ("Overflow after quantization, a division by a value that became 0.",),
        ("Keep the layer in float, or clamp its inputs in the model.",),
        "variants:\n  - {name: float16, quantization: float16}   # try a wider type first",
    ),
    "threshold-not-applied": Explanation(
        "A threshold the policy sets could not be applied, so it did not gate anything.",
        (
            "`min_top1` on a model without `classification:` outputs.",
            "A `.tflite` source without `reference:` (nothing to compare with).",
            "A `.tflite` source without `reference:` on several runtimes whose first runtime "
            "gave no outputs: they are the reference of the other runtimes.",
        ),
        (
            "List the classification outputs, or give the .tflite a reference model.",
            "Make the first runtime run (the message names it), or give a reference model.",
        ),
        "models:\n  - name: m\n    source: model.keras\n    classification: [probs]",
    ),
    "size-budget": Explanation(
        "A variant's .tflite is larger than `budgets.max_size_bytes`.",
        ("A model that grew (more or wider layers), or a variant left unquantized.",),
        ("Quantize (dynamic or int8), prune, or raise the budget if the app can afford it.",),
        "defaults:\n  budgets: {max_size_bytes: 4000000}",
    ),
    "latency-budget": Explanation(
        "A variant's median invoke time on a runtime is above `budgets.max_latency_ms`.",
        (
            "A heavier model, or a noisy CI runner: latency findings are warnings unless "
            "`budgets.latency_severity` says otherwise.",
        ),
        (
            "Quantize or simplify the model, or raise the budget; compare numbers from the "
            "same machine (`latency_runs` more runs steady the median).",
        ),
        "defaults:\n  budgets: {max_latency_ms: 20, latency_runs: 20, num_threads: 1,\n"
        "            latency_severity: error}",
    ),
    "baseline-regression": Explanation(
        "Compared with the baseline report (`check --baseline`, e.g. the base branch's), a "
        "variant changed in a way the policy's `regression:` section forbids: it grew by more "
        "than `max_size_increase`, uses an op the baseline did not (`allow_new_ops: false`), "
        "needs a newer runtime (`allow_min_runtime_increase: false`), or an output's metrics "
        "got worse by more than `max_metric_worsening` (one finding per output, naming each "
        "metric; a change that does not show in six significant digits is no change).",
        (
            "A new layer or a new op version from a converter upgrade.",
            "A change in quantization or calibration data that costs accuracy.",
        ),
        (
            "Undo the change the message names, or accept it by loosening that key; the next "
            "baseline (the merged branch's report) then holds the new state.",
        ),
        "defaults:\n  regression:\n    max_size_increase: 10%\n    allow_new_ops: false\n"
        "    allow_min_runtime_increase: false\n    max_metric_worsening: 5%",
    ),
    "internal-error": Explanation(
        "tflite-gate itself failed: a bug, not your model.",
        ("An unexpected exception inside the gate; the report still holds what finished.",),
        ("Please report it with the JSON report (it has the traceback) attached.",),
        "# exit code 3: the report's `internal_error` has the traceback",
    ),
    "environment-error": Explanation(
        "The gate could not read or write a file it needed (disk full, read-only, permissions).",
        ("A full disk or TMPDIR, a read-only cache or artifacts directory.",),
        (
            "Free space or fix permissions where the message points (--artifacts, "
            "--cache-dir, TMPDIR), then run again.",
        ),
        "# tflite-gate check --artifacts /tmp/gate-artifacts --cache-dir ~/.cache/tflite-gate",
    ),
    "cancelled": Explanation(
        "The run was cancelled (SIGTERM or SIGINT) before every model was checked.",
        ("A cancelled CI job, a newer push, Ctrl-C.",),
        ("Run the gate again for a verdict; the report holds only what finished.",),
        "# exit code 143 (SIGTERM) or 130 (SIGINT)",
    ),
    "shard-missing": Explanation(
        "`merge` was given no report for a model (or runtime) the matrix planned.",
        ("The shard's job failed before it wrote a report, or its artifact has another name.",),
        ("Fix that job, or the artifact names `merge` reads; the verdict needs every shard.",),
        "# tflite-gate merge shards/*/tflite-gate-report.json",
    ),
    "usage-error": Explanation(
        "The gate was called with an option or Action input it cannot use.",
        ("A report path that is a directory, a runtime the policy does not name.",),
        ("Fix the option or input the message names; no model was checked.",),
        "# tflite-gate check --report out/report.json",
    ),
}
