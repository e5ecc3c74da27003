"""The Action as the runner runs it: the image built from the Dockerfile, run in a container.

The runner starts a Docker action with `--workdir /github/workspace`, the checkout
(owned by the runner's user, uid 1001) mounted there, `/github/home` as HOME,
`/github/workflow` holding the event and `/github/file_commands` holding the files
behind GITHUB_OUTPUT and GITHUB_STEP_SUMMARY, and every input as `INPUT_<NAME>` with
hyphens kept. So do these tests, with a fake GitHub API on the host network for the
sticky comment, twice on one checkout (the second run must reuse the cached runtime
and edit the same comment), and once with a bad input.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from tests.support.action_env import ActionRun, parse_outputs
from tests.support.docker_engine import (
    Engine,
    EngineUnavailableError,
    build_image,
    ensure_base_image,
    image_size,
    running_engine,
)
from tests.support.fake_github import PR, TOKEN, FakeGitHub, serve
from tests.support.harness import REPO, run_gate
from tests.support.tflite_builder import build_model, builtin

pytestmark = [pytest.mark.container, pytest.mark.slow]

IMAGE = os.environ.get("TFLITE_GATE_IMAGE", "tflite-gate:test")
RUNNER_UID = RUNNER_GID = 1001
SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())
CONTAINER_PATHS = ("/github/workspace", "/github/home", "/github/workflow", "/github/file")

POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      runtimes:
        - ai-edge-litert
        - {requirement: tflite-runtime==2.14.0, with: ["numpy<2"]}
    models:
      - name: dense
        source: zoo:build
      - name: relu
        source: models/relu.tflite
        ops:
          allow: [ADD]
    """
)
ALLOW_LINE = 1 + POLICY.splitlines().index("      allow: [ADD]")

ZOO = textwrap.dedent(
    """\
    import keras

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8,), batch_size=1, name="x")
        return keras.Model(inputs, keras.layers.Dense(3, name="y")(inputs))
    """
)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    try:
        with running_engine() as started:
            yield started
    except EngineUnavailableError as why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the container tests: {why}")
        pytest.skip(str(why))


@dataclass(frozen=True)
class Image:
    tag: str
    build_s: float
    base_s: float
    size: int


@pytest.fixture(scope="module")
def image(engine: Engine) -> Image:
    if os.environ.get("TFLITE_GATE_IMAGE"):  # a release job tests the image it built
        return Image(IMAGE, 0.0, 0.0, image_size(engine, IMAGE))
    base_s = ensure_base_image(engine)
    build_s = build_image(engine, REPO, IMAGE)
    built = Image(IMAGE, build_s, base_s, image_size(engine, IMAGE))
    print(f"\n[container] base {base_s:.0f} s, build {build_s:.0f} s, {built.size / 1e9:.2f} GB")
    return built


@dataclass
class Runner:
    """The runner's directories for one job: checkout, home, workflow, file commands."""

    root: Path

    @property
    def repository(self) -> Path:
        return self.root / "repo"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def workflow(self) -> Path:
        return self.root / "workflow"

    @property
    def file_commands(self) -> Path:
        return self.root / "file_commands"


def _checkout(root: Path) -> Runner:
    runner = Runner(root)
    ml = runner.repository / "ml"
    (ml / "models").mkdir(parents=True)
    (ml / "tflite-gate.yml").write_text(POLICY)
    (ml / "zoo.py").write_text(ZOO)
    (ml / "models" / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    for directory in (runner.home, runner.workflow, runner.file_commands):
        directory.mkdir()
    (runner.workflow / "event.json").write_text(
        json.dumps({"action": "synchronize", "number": PR, "pull_request": {"number": PR}})
    )
    (root / "git-home").mkdir()
    for path in [root, *root.rglob("*")]:
        os.chown(path, RUNNER_UID, RUNNER_GID)
    _git(runner.repository, "init", "--quiet")
    _git(runner.repository, "add", ".")
    _git(runner.repository, "commit", "--quiet", "--message", "models")
    return runner


def _git(repository: Path, *argv: str) -> str:
    done = subprocess.run(
        [
            *("git", "-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@t"),
            *("-C", str(repository), *argv),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": os.environ["PATH"], "HOME": str(repository.parent / "git-home")},
        user=RUNNER_UID,  # as the runner's later steps run it (and git may rewrite its index)
        group=RUNNER_GID,
    )
    return done.stdout


def run_action(
    engine: Engine, image: Image, runner: Runner, github: FakeGitHub, **inputs: str
) -> tuple[ActionRun, float]:
    """`docker run` with the runner's mounts, variables and inputs; the run and its seconds.

    Each run is a new job: the runner gives it an empty home (what a run leaves there
    is gone), while the checkout keeps what `actions/cache` would restore into it.
    """
    shutil.rmtree(runner.home)
    runner.home.mkdir()
    os.chown(runner.home, RUNNER_UID, RUNNER_GID)
    step = f"{time.monotonic_ns()}"
    outputs, summary = (
        runner.file_commands / f"set_output_{step}",
        runner.file_commands / f"step_summary_{step}",
    )
    for path in (outputs, summary):
        path.write_text("")
        os.chown(path, RUNNER_UID, RUNNER_GID)
    variables = {
        "HOME": "/github/home",
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REPOSITORY": "octo-org/models",
        "GITHUB_API_URL": github.base_url,
        "GITHUB_OUTPUT": f"/github/file_commands/{outputs.name}",
        "GITHUB_STEP_SUMMARY": f"/github/file_commands/{summary.name}",
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "RUNNER_OS": "Linux",
    }
    defaults = {
        "policy": "tflite-gate.yml",
        "working-directory": "ml",
        "fail-on": "",
        "comment": "update",
        "github-token": TOKEN,
        "report": "tflite-gate-report.json",
        "sarif": "",
        "junit": "",
        "only": "",
        "cache-dir": ".tflite-gate/cache",
    }
    variables.update({f"INPUT_{k.upper()}": v for k, v in {**defaults, **inputs}.items()})
    mounts = {
        runner.repository: "/github/workspace",
        runner.home: "/github/home",
        runner.workflow: "/github/workflow",
        runner.file_commands: "/github/file_commands",
    }
    argv = ["run", "--rm", "--network", "host", "--workdir", "/github/workspace"]
    for host, inside in mounts.items():
        argv += ["-v", f"{host}:{inside}"]
    for name, value in variables.items():
        argv += ["-e", f"{name}={value}"]
    started = time.monotonic()
    done = engine.docker(*argv, image.tag, timeout=900)
    seconds = time.monotonic() - started
    run = ActionRun(
        done.returncode,
        done.stdout + done.stderr,
        parse_outputs(outputs.read_text()),
        summary.read_text(),
    )
    return run, seconds


def _not_the_runners(root: Path) -> list[str]:
    """Paths under `root` the runner's user would not own: it could not delete them."""
    return [
        str(path.relative_to(root))
        for path in [root, *root.rglob("*")]
        if (path.lstat().st_uid, path.lstat().st_gid) != (RUNNER_UID, RUNNER_GID)
    ]


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    yield from serve()


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    # Not under pytest's own temporary directory: that is root's alone (0700), and the
    # runner's user must reach its checkout.
    root = Path(tempfile.mkdtemp(prefix="tflite-gate-job-"))
    root.chmod(0o755)
    made = _checkout(root)
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


@pytest.fixture(scope="module")
def two_runs(
    engine: Engine, image: Image, runner: Runner, github: FakeGitHub
) -> tuple[tuple[ActionRun, float], tuple[ActionRun, float]]:
    first = run_action(engine, image, runner, github)
    second = run_action(engine, image, runner, github)
    print(f"\n[container] first run {first[1]:.1f} s, second run {second[1]:.1f} s")
    return first, second


def test_failing_run_annotates_repository_paths_and_sets_outputs(
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]], runner: Runner
) -> None:
    (run, _), _ = two_runs
    assert run.returncode == 1, run.stdout[-4000:]
    assert "Traceback" not in run.stdout
    errors = [c for c in run.commands() if c.startswith("::error ")]
    assert any(
        c.startswith("::error title=op-not-allowed")
        and f"file=ml/tflite-gate.yml,line={ALLOW_LINE}," in c
        for c in errors
    ), errors
    assert run.outputs["verdict"] == "fail"
    assert int(run.outputs["errors"]) >= 1
    assert run.outputs["report-path"] == "ml/tflite-gate-report.json"
    assert re.fullmatch(r"fail: \d+ errors?, \d+ warnings? in 2 models", run.outputs["summary"])
    assert run.summary.startswith("## tflite-gate: FAIL")
    report = json.loads((runner.repository / "ml" / "tflite-gate-report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    dense = next(m for m in report["models"] if m["name"] == "dense")
    assert [r["status"] for r in dense["variants"][0]["runs"]] == ["passed", "passed"]


def test_no_container_path_is_ever_shown(
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]],
) -> None:
    for run, _ in two_runs:
        for text in (run.stdout, run.summary, *run.outputs.values()):
            shown = [path for path in CONTAINER_PATHS if path in text]
            assert shown == [], [line for line in text.splitlines() if shown[0] in line]


def test_everything_written_belongs_to_the_runners_user(
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]], runner: Runner
) -> None:
    assert (runner.repository / "ml" / ".tflite-gate" / "artifacts" / "dense").is_dir()
    assert list((runner.repository / "ml" / ".tflite-gate" / "cache" / "runtimes").iterdir())
    assert _not_the_runners(runner.repository) == []
    assert _not_the_runners(runner.home) == []


def test_git_sees_only_the_report_as_new(
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]], runner: Runner
) -> None:
    """Artifacts and caches live in .tflite-gate/, which ignores itself."""
    assert _git(runner.repository, "status", "--porcelain").splitlines() == [
        "?? ml/tflite-gate-report.json"
    ]


def test_the_second_run_reuses_the_cached_runtime_and_edits_the_same_comment(
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]], github: FakeGitHub
) -> None:
    (first, first_s), (second, second_s) = two_runs
    assert "reusing the cached environment" not in first.stdout
    reuse = [
        line for line in second.stdout.splitlines() if "reusing the cached environment" in line
    ]
    prefix = "[runtime] tflite-runtime==2.14.0: reusing the cached environment "
    assert len(reuse) == 1 and reuse[0].startswith(prefix), reuse
    assert reuse[0].removeprefix(prefix).startswith(".tflite-gate/cache/runtimes/")
    assert second.returncode == first.returncode == 1
    assert second_s < first_s
    posts = [r for r in github.requests if r.method == "POST"]
    patches = [r for r in github.requests if r.method == "PATCH"]
    assert (len(posts), len(patches)) == (1, 1)
    assert len(github.comments) == 1
    assert "pull request comment updated" in second.stdout


def test_the_baseline_input_compares_with_an_earlier_report_in_the_image(
    engine: Engine,
    image: Image,
    runner: Runner,
    github: FakeGitHub,
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]],
) -> None:
    base = runner.repository / "ml" / "base.json"
    shutil.copy(runner.repository / "ml" / "tflite-gate-report.json", base)
    os.chown(base, RUNNER_UID, RUNNER_GID)
    run, _ = run_action(engine, image, runner, github, baseline="base.json")
    assert run.returncode == 1, run.stdout[-3000:]
    assert "### Since the baseline `ml/base.json`" in run.summary  # a repository path
    report = json.loads((runner.repository / "ml" / "tflite-gate-report.json").read_text())
    assert report["baseline"]["report"] == "ml/base.json"
    assert report["baseline"]["variants"]
    base.unlink()


def test_a_bad_input_still_writes_outputs_summary_and_report(
    engine: Engine,
    image: Image,
    runner: Runner,
    github: FakeGitHub,
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]],
) -> None:
    run, _ = run_action(engine, image, runner, github, **{"fail-on": "sometimes"})
    assert run.returncode == 2, run.stdout[-3000:]
    assert run.commands()[0] == (
        "::error title=tflite-gate input::fail-on must be error, warning or never, got 'sometimes'"
    )
    assert run.outputs["verdict"] == "error"
    assert run.summary.startswith("## tflite-gate: ERROR")
    report = json.loads((runner.repository / "ml" / "tflite-gate-report.json").read_text())
    assert report["verdict"] == "error"
    assert [f["rule"] for f in report["findings"]] == ["usage-error"]
    assert _not_the_runners(runner.repository) == []


def test_messages_that_name_files_name_them_from_the_repository(
    engine: Engine,
    image: Image,
    runner: Runner,
    github: FakeGitHub,
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]],
) -> None:
    """A path the gate resolved itself (a custom-op library) is shown as `ml/lib/...`."""
    policy = runner.repository / "ml" / "libs.yml"
    policy.write_text(
        "version: 1\nmodels:\n  - name: relu\n    source: models/relu.tflite\n"
        "    runtimes: [{requirement: ai-edge-litert, custom_op_registerers: [Reg],"
        " custom_op_libraries: [lib/missing.so]}]\n"
    )
    os.chown(policy, RUNNER_UID, RUNNER_GID)
    try:
        run, _ = run_action(engine, image, runner, github, policy="libs.yml", comment="off")
    finally:
        policy.unlink()
    assert run.returncode == 1, run.stdout[-3000:]
    assert "custom-op library ml/lib/missing.so does not exist" in run.stdout
    report = (runner.repository / "ml" / "tflite-gate-report.json").read_text()
    for text in (run.stdout, run.summary, report):
        assert [p for p in CONTAINER_PATHS if p in text] == []


CLI_FLAGS = re.compile(r"--(only|policy|artifacts|cache-dir|workspace|report|sarif|junit)\b")


def test_a_usage_error_speaks_of_inputs_not_flags(
    engine: Engine,
    image: Image,
    runner: Runner,
    github: FakeGitHub,
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]],
) -> None:
    run, _ = run_action(engine, image, runner, github, only="nope")
    assert run.returncode == 2, run.stdout[-3000:]
    assert "the `only` input names unknown model(s) nope; the policy has: dense, relu" in (
        run.stdout
    )
    assert CLI_FLAGS.findall(run.stdout + run.summary) == []
    assert run.outputs["verdict"] == "error"
    assert run.outputs["summary"] == "error: 1 error, 0 warnings in 0 models"
    assert "1 errors" not in run.stdout + run.summary
    missing, _ = run_action(engine, image, runner, github, policy="none.yml")
    assert missing.returncode == 2
    assert "run `tflite-gate init` to write a first policy" in missing.stdout
    assert "give the `policy` input the policy's path: none.yml does not exist" in missing.stdout
    assert "line and column given" not in missing.stdout + missing.summary
    assert CLI_FLAGS.findall(missing.stdout + missing.summary) == []
    assert missing.outputs["verdict"] == "error"


def test_the_image_is_the_installed_package_without_build_leftovers(
    engine: Engine, image: Image
) -> None:
    probe = (
        "import tflite_gate, sys; print(tflite_gate.__file__); "
        "import os; print(sorted(os.listdir('/action')))"
    )
    done = engine.docker(
        "run", "--rm", "--entrypoint", "python", image.tag, "-c", probe, timeout=120
    )
    assert done.returncode == 0, done.stderr
    module, listing = done.stdout.splitlines()
    assert "/site-packages/" in module or "/dist-packages/" in module, module
    assert listing == "['entrypoint.py']"


def _locked(name: str) -> str:
    lock = (REPO / "requirements" / "action.txt").read_text()
    found = re.search(rf"^{re.escape(name)}==(\S+)$", lock, re.M)
    assert found, name
    return found.group(1)


def test_the_image_has_the_locked_cpu_tensorflow_and_reports_it(
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]], runner: Runner
) -> None:
    report = json.loads((runner.repository / "ml" / "tflite-gate-report.json").read_text())
    packages = report["environment"]["packages"]
    assert packages["tensorflow"] == _locked("tensorflow")
    assert packages["ai-edge-litert"] == _locked("ai-edge-litert")


def test_the_images_converter_writes_the_same_bytes_as_the_gates_own(
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]],
    runner: Runner,
    tmp_path: Path,
) -> None:
    """The image's tensorflow-cpu against this machine's tensorflow: the same model."""
    from tflite_gate.support.environment import installed_version

    here = installed_version("tensorflow")
    if here != _locked("tensorflow"):
        pytest.skip(f"this machine has TensorFlow {here}, the image {_locked('tensorflow')}")
    workspace = tmp_path / "ml"
    shutil.copytree(
        runner.repository / "ml", workspace, ignore=shutil.ignore_patterns(".tflite-gate", "*.json")
    )
    (workspace / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - {name: dense, source: 'zoo:build'}\n"
    )
    host = run_gate(workspace, "--quiet")
    assert host.returncode == 0, host.stderr
    ours = workspace / ".tflite-gate" / "artifacts" / "dense" / "float.tflite"
    image_made = runner.repository / "ml" / ".tflite-gate" / "artifacts" / "dense" / "float.tflite"
    assert ours.read_bytes() == image_made.read_bytes()


def test_the_sharded_workflow_runs_in_the_image(
    engine: Engine,
    image: Image,
    runner: Runner,
    github: FakeGitHub,
    two_runs: tuple[tuple[ActionRun, float], tuple[ActionRun, float]],
) -> None:
    """command: matrix, then check per entry, then merge, each a container as the runner runs."""
    plan, _ = run_action(engine, image, runner, github, command="matrix")
    assert plan.returncode == 0, plan.stdout[-3000:]
    entries = json.loads(plan.outputs["matrix"])["include"]
    assert entries == [{"model": "dense"}, {"model": "relu"}]
    for index, entry in enumerate(entries):
        shard, _ = run_action(
            engine,
            image,
            runner,
            github,
            only=entry["model"],
            comment="off",
            report=f"shards/{index}/shard.json",
        )
        assert shard.returncode in {0, 1}, shard.stdout[-3000:]
    merged, _ = run_action(
        engine, image, runner, github, command="merge", reports="shards/*/*.json"
    )
    whole, _ = two_runs[1]
    assert merged.returncode == whole.returncode == 1, merged.stdout[-3000:]
    assert merged.outputs["summary"] == whole.outputs["summary"]
    assert any(
        c.startswith("::error title=op-not-allowed")
        and f"file=ml/tflite-gate.yml,line={ALLOW_LINE}," in c
        for c in merged.commands()
    )
    assert "pull request comment updated" in merged.stdout
    assert len(github.comments) == 1
    assert [path for path in CONTAINER_PATHS if path in merged.stdout] == []
    assert _not_the_runners(runner.repository) == []
