# The GitHub Action's image. The runner mounts the workspace at /github/workspace and
# sets it as the working directory, so there is no WORKDIR and no USER here.
#
# Two stages: the first builds the gate's wheel, the second installs the locked
# dependency set (requirements/action.txt, written by pip-compile) and that wheel, so
# the image holds the installed package and entrypoint.py, never the source tree or
# its build leftovers, and an image tag always means the same TensorFlow.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md /src/
COPY tflite_gate /src/tflite_gate
RUN python -m pip wheel --no-deps --wheel-dir /wheels /src

FROM python:3.11-slim
# No bytecode next to the user's model code: the checkout stays as it was checked out.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The dependency layer changes only with the lock, not with the gate's code. On x86_64
# TensorFlow comes as its CPU build: the same converter (byte-identical models, tested)
# without the CUDA kernels, 0.6 GB smaller; it has the same dependencies as
# `tensorflow`, which tf-keras and the gate name, so the complete lock is installed with
# --no-deps rather than letting pip fetch `tensorflow` too. (On aarch64 `tensorflow`
# itself is the CPU build, and there is no tensorflow-cpu.)
COPY requirements/action.txt /tmp/action.txt
RUN if [ "$(uname -m)" = "x86_64" ]; then cpu='s/^tensorflow==/tensorflow-cpu==/'; else cpu=''; fi \
    && sed "$cpu" /tmp/action.txt > /tmp/image.txt \
    && python -m pip install --no-deps --requirement /tmp/image.txt \
    && rm /tmp/action.txt /tmp/image.txt
COPY --from=wheel /wheels /tmp/wheels
RUN python -m pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
COPY entrypoint.py /action/entrypoint.py

ENTRYPOINT ["python", "/action/entrypoint.py"]
