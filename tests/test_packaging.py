"""Packaging: environment.yml and pyproject.toml agree; the wheel and sdist build without
warnings; the wheel installs into a fresh environment and its command works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
# pyproject name -> conda-forge name, where they differ
CONDA_NAMES = {"igraph": "python-igraph", "build": "python-build"}
#: Extras that environment.yml installs too (the conda environment is the full developer setup).
CONDA_EXTRAS = ("dev", "cluster", "docs")


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = dict(_split(r) for r in pyproject["project"]["dependencies"])
    for extra in CONDA_EXTRAS:
        wanted.update(_split(r) for r in pyproject["project"]["optional-dependencies"][extra])
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


def test_license_is_an_spdx_string_with_its_file():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    assert pyproject["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    # SPDX license strings need setuptools >= 77 (PEP 639)
    req = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    assert req == ["setuptools>=77"]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["PIP_NO_INDEX"] = "1"  # offline: nothing is fetched
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build")
    import setuptools

    if tuple(int(x) for x in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip(f"setuptools {setuptools.__version__} < 77 cannot build an SPDX license string offline")
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, env=_clean_env(), cwd=out, timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = (res.stdout + res.stderr).lower()
    assert "warning" not in text, [ln for ln in text.splitlines() if "warning" in ln]
    return out


@pytest.mark.slow
def test_wheel_and_sdist_contents(dist: Path):
    (wheel,) = dist.glob("graphtickets-*.whl")
    (sdist,) = dist.glob("graphtickets-*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    assert "graphtickets/studies/default.yaml" in names  # the bundled default study
    assert "graphtickets/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: MIT" in meta
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/", "examples/"))]
    import tarfile

    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("/LICENSE") for m in members)
    assert any(m.endswith("graphtickets/studies/default.yaml") for m in members)


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv(dist: Path, tmp_path: Path):
    """The wheel alone, in a new environment; its dependencies come from this environment's
    site-packages (a path line, so this environment's editable graphtickets is not seen)."""
    (wheel,) = dist.glob("graphtickets-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    (site / "_parent_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    env = _clean_env()
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, env=env, timeout=300, capture_output=True)
    exe = venv / "bin" / "graphtickets"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == "graphtickets 0.1.0", version
    methods = subprocess.run([str(exe), "methods"], capture_output=True, text=True, env=env, timeout=300)
    assert methods.returncode == 0, methods.stderr
    assert {"snip", "synflow", "imp", "magnitude"} <= {ln.split()[0] for ln in methods.stdout.splitlines()[2:]}
    where = subprocess.run(
        [str(py), "-c", "import graphtickets, importlib.resources as r; print(graphtickets.__file__); "
         "print(r.files('graphtickets').joinpath('studies/default.yaml').is_file())"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    file, bundled = where.stdout.split()
    assert Path(file).is_relative_to(venv), file  # the wheel's copy, not the source tree
    assert bundled == "True"
