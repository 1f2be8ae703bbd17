"""`pip install .` is the library alone: a fresh environment has none of the harness's
dependencies, and `import gru_jax` plus a gru_scan gradient work there.

It installs jax from the package index (about a minute and a half), so it runs on
request: GRU_JAX_INSTALL_TEST=1 (CI runs the same check as `make lean`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GRU_JAX_INSTALL_TEST") != "1",
                    reason="installs from the package index: set GRU_JAX_INSTALL_TEST=1")
def test_pip_install_dot_is_the_library_alone():
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_lean_install.py")],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and "lean install ok" in p.stdout, (p.stdout + p.stderr)[-3000:]
