"""environment.yml and pyproject.toml declare the same dependencies with the same bounds."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
# pyproject name -> conda-forge name, where they differ
CONDA_NAMES = {"igraph": "python-igraph"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = dict(_split(r) for r in pyproject["project"]["dependencies"])
    wanted.update(_split(r) for r in pyproject["project"]["optional-dependencies"]["dev"])
    wanted = {CONDA_NAMES.get(k, k): v for k, v in wanted.items()}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    have: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for p in dep["pip"]:
                if not p.startswith("-"):
                    k, v = _split(p)
                    have[k] = v
        else:
            k, v = _split(dep)
            if k not in ("python", "pip"):
                have[k] = v
    assert have == wanted


def test_constraints_pin_cpu_torch():
    pins = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==\d+\.\d+\.\d+$", pins, flags=re.M)


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash bootstrap.sh test" in readme
    assert "bash bootstrap.sh test" in ci
    assert "bash bootstrap.sh run" in readme


def test_python_requirement_is_consistent():
    """tomllib (this file) needs 3.11, so pyproject, README and bootstrap.sh all say 3.11."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert "Python ≥ 3.11" in (ROOT / "README.md").read_text()
    boot = (ROOT / "bootstrap.sh").read_text()
    assert "Python >= 3.11" in boot and "sys.version_info < (3, 11)" in boot
    for text in ((ROOT / "README.md").read_text(), boot):
        assert "3.10" not in text


def test_py_typed_and_vision_extra_are_declared():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert (ROOT / "graphtickets" / "py.typed").is_file()
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["graphtickets"]
    assert [_split(r)[0] for r in pyproject["project"]["optional-dependencies"]["vision"]] == ["torchvision"]
