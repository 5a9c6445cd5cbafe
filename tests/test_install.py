"""tfcxr as an installed package, not an editable checkout: the wheel carries the shipped
configs, and an installed copy (outside the source tree) loads the demo config and runs the CLI."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tfcxr.config import load_run_config, shipped_configs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the source, installed (no deps) into a folder of its own."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "tfcxr", source / "tfcxr", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", base / "dist", source],
                   check=True, timeout=120)
    wheel = next((base / "dist").glob("tfcxr-*.whl"))
    site = base / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", site, wheel],
                   check=True, timeout=120)
    return wheel, site


def _run_installed(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}  # the installed copy first, not the checkout
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_wheel_ships_every_config(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"tfcxr/configs/{name}.yaml" for name in shipped_configs()}
    assert "tfcxr/configs/demo.yaml" in shipped and "tfcxr/configs/paper/nih.yaml" in shipped
    assert shipped <= names, sorted(shipped - names)


def test_an_installed_copy_loads_the_demo_config_and_runs_the_cli(installed, tmp_path):
    _, site = installed
    expected = load_run_config()  # from this checkout's tfcxr/configs/demo.yaml
    code = ("import tfcxr, tfcxr.config as c; r = c.load_run_config(); "
            "print(tfcxr.__file__); print(r.data.image_size, r.teacher.train.epochs, "
            "r.student.train.epochs, r.data.dataset); print(c.load_run_config('paper/nih').data.image_size)")
    result = _run_installed(site, "-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    where, numbers, paper = result.stdout.strip().splitlines()[-3:]
    assert Path(where).resolve().is_relative_to(site.resolve())  # not the editable checkout
    assert numbers.split() == [str(expected.data.image_size), str(expected.teacher.train.epochs),
                               str(expected.student.train.epochs), "demo"]
    assert paper == "224"
    help_text = _run_installed(site, "-m", "tfcxr.cli", "distill", "--help", cwd=tmp_path)
    assert help_text.returncode == 0, help_text.stderr
    assert "--teacher" in help_text.stdout and "shipped" in help_text.stdout
