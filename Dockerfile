# The GitHub Action's image: the same `pip install .` that CI and the README use.
# The runner mounts the workspace at /github/workspace and sets it as the working
# directory, so there is no WORKDIR and no USER here.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

COPY . /opt/tflite-gate
RUN python -m pip install /opt/tflite-gate

ENTRYPOINT ["python", "/opt/tflite-gate/entrypoint.py"]
