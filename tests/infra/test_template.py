"""template.yaml as source: cfn-lint, and the code and build files it points at exist."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.infra.sam import ROOT, resources_of, source
from tests.test_dependency_closure import FORBIDDEN, PROJECT, closure


def test_template_is_cfn_lint_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


FUNCTIONS = resources_of(source(), "AWS::Serverless::Function")


def test_both_functions_are_there() -> None:
    assert set(FUNCTIONS) == {"RouterFunction", "LauncherFunction"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_module_and_function_exist(logical_id: str) -> None:
    handler = FUNCTIONS[logical_id]["Properties"]["Handler"]
    module_name, _, attribute = handler.rpartition(".")
    assert (ROOT / (module_name.replace(".", "/") + ".py")).is_file()
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_makefile_build_target_exists(logical_id: str) -> None:
    function = FUNCTIONS[logical_id]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    code_uri = ROOT / function["Properties"]["CodeUri"]
    makefile = (code_uri / "Makefile").read_text()
    # `sam build` runs `make build-<LogicalId>` with ARTIFACTS_DIR set.
    assert re.search(rf"^build-{logical_id}:", makefile, re.M)
    assert "ARTIFACTS_DIR" in makefile


def test_launcher_makefile_installs_the_launcher_extra_only() -> None:
    makefile = (ROOT / "launcher" / "Makefile").read_text()
    assert re.search(r'build-lambda-package\.sh" launcher "\$\(ARTIFACTS_DIR\)"', makefile)
    # The shared recipe installs the wheel with exactly that extra, as Lambda binary wheels.
    script = (ROOT / "scripts" / "build-lambda-package.sh").read_text()
    assert '"${wheel}[${extra}]"' in script
    assert "--only-binary=:all:" in script


def test_launcher_extra_pulls_no_heavy_packages() -> None:
    # Read from pyproject.toml (an installed or stale egg-info may predate the extra), then
    # walk the installed dependency graph from each requirement.
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in extra["optional-dependencies"]["launcher"]]
    deps: set[str] = set()
    for req in requirements:
        assert req.name != PROJECT
        deps |= closure(req.name, set(req.extras))
    assert "aws-lambda-powertools" in deps and "boto3" in deps
    assert not FORBIDDEN & deps, f"launcher closure includes {sorted(FORBIDDEN & deps)}"


def test_one_lambda_runtime_the_newest_and_the_package_build_follows_it() -> None:
    template = source()
    runtime = template["Globals"]["Function"]["Runtime"]
    assert runtime == "python3.14"
    for function in FUNCTIONS.values():  # one place: no function overrides it
        assert "Runtime" not in function["Properties"]
    # The newest Python runtime cfn-lint knows: nothing succeeds it.
    spec = importlib.util.find_spec("cfnlint")
    assert spec is not None and spec.origin is not None
    data = Path(spec.origin).parent / "data" / "AdditionalSpecs" / "LmbdRuntimeLifecycle.json"
    lifecycle = json.loads(data.read_text())
    assert lifecycle[runtime]["successor"] is None
    # scripts/build-lambda-package.sh reads that line for pip's --python-version.
    script = (ROOT / "scripts" / "build-lambda-package.sh").read_text()
    (expression,) = re.findall(r"sed -n '([^']+)' \"\$root/template.yaml\"", script)
    found = subprocess.run(
        ["sed", "-n", expression, str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert found == [runtime.removeprefix("python")]
    assert '--python-version "$lambda_python"' in script
    # The project installs on it (requires-python) and the code targets the local 3.11.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11"
