"""`pip install .` gives the library alone: check it in a fresh virtual environment::

    python scripts/check_lean_install.py [--venv=DIR] [--keep]

Creates DIR (default: a temporary folder), installs this checkout into it
without extras, and checks that none of the harness's dependencies came with
it (orbax, tensorboard, matplotlib, scikit-learn, ml_collections; flax and
optax too: they are extras) and
that ``import gru_jax`` and a gradient through ``gru_scan`` work there.
Needs the package index (PyPI) for jax, flax and optax. Exit 0: it holds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# distributions `pip install .` must not bring (the harness's and the extras')
NOT_INSTALLED = ("flax", "optax", "orbax-checkpoint", "tensorboard", "tensorboardX", "matplotlib",
                 "scikit-learn", "ml-collections", "absl-py", "tqdm", "mnist1d", "statsmodels",
                 "chex")
PROBE = """
import importlib.metadata as md, sys
missing = []
for dist in sys.argv[1:]:
    try:
        md.version(dist)
        missing.append(dist)
    except md.PackageNotFoundError:
        pass
assert not missing, f"installed with the library: {missing}"
import jax, jax.numpy as jnp, gru_jax
params = gru_jax.init_gru(jax.random.key(0), 2, 3)
loss = lambda p: jnp.sum(gru_jax.gru_scan(p, jnp.ones((1, 4, 2)))[0] ** 2)
grads = jax.grad(loss)(params)
assert all(bool(jnp.isfinite(g).all()) for g in jax.tree_util.tree_leaves(grads))
print("lean install ok:", gru_jax.__version__, "jax", jax.__version__)
"""


def check(venv: Path) -> str:
    """Create `venv`, install ROOT into it, run PROBE; returns PROBE's output line."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    out = subprocess.run([str(py), "-c", PROBE, *NOT_INSTALLED], text=True,
                         capture_output=True, cwd=venv, env={"JAX_PLATFORMS": "cpu"})
    if out.returncode:
        sys.exit(f"lean install: {out.stderr.strip().splitlines()[-1]}")
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", help="where to create the environment (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary environment")
    args = parser.parse_args()
    if args.venv or args.keep:
        venv = Path(args.venv or tempfile.mkdtemp(prefix="gru_jax_lean_")) / "venv"
        print(check(venv), f"({venv})")
        return
    with tempfile.TemporaryDirectory(prefix="gru_jax_lean_") as d:
        print(check(Path(d) / "venv"))


if __name__ == "__main__":
    main()
