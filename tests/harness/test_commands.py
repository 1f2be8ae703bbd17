"""The `gru-jax` command: its subcommands, their --help, and the scripts as thin wrappers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import tomllib
from conftest import ROOT, subprocess_env

from gru_jax.commands import COMMANDS, usage


def gru_jax_cli(*args, timeout=120) -> subprocess.CompletedProcess:
    """`gru-jax ARGS` as the installed entry point runs it (python -m gru_jax)."""
    return subprocess.run([sys.executable, "-m", "gru_jax", *args], capture_output=True,
                          text=True, cwd=ROOT, env=subprocess_env(), timeout=timeout)


def test_the_entry_point_is_declared_and_lists_every_subcommand():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"gru-jax": "gru_jax.commands:main"}
    assert list(COMMANDS) == ["train", "sweep", "search", "report", "predict", "bench"]
    p = gru_jax_cli("--help")
    assert p.returncode == 0 and p.stdout.strip() == usage()
    for name in COMMANDS:
        assert f"\n  {name} " in p.stdout


def test_no_subcommand_or_an_unknown_one_is_an_error():
    assert gru_jax_cli().returncode == 2
    p = gru_jax_cli("trian")
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        "gru-jax: error: unknown command 'trian'; choose one of train, sweep, search, report, "
        "predict, bench (gru-jax --help)"]


@pytest.mark.slow
@pytest.mark.parametrize("name, flag", [("train", "print_config"), ("sweep", "--workers"),
                                        ("search", "--sampler"),
                                        ("report", "--series_results"), ("bench", "--mode")])
def test_each_subcommand_runs_its_command_line(name, flag):
    # --help: absl exits 1 after printing the flags (the contract's scripts do the same)
    p = gru_jax_cli(name, "--help")
    assert flag in p.stdout, (p.stdout + p.stderr)[-2000:]


def test_scripts_are_thin_and_do_not_edit_sys_path():
    for script in sorted((ROOT / "scripts").glob("*.py")):
        assert "sys.path.insert" not in script.read_text(), script.name
    for name in ("train", "sweep", "search", "report", "predict", "bench"):
        text = (ROOT / "scripts" / f"{name}.py").read_text()
        assert f"from gru_jax.commands.{name} import run" in text and len(text.splitlines()) < 10
        # the command itself is in the package: `gru-jax NAME` needs no checkout
        assert importlib.util.find_spec(f"gru_jax.commands.{name}") is not None, name
