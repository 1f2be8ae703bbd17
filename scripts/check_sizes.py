"""Functions over 80 lines and classes over 150 in gru_jax/ (the issue's size limits)::

    python scripts/check_sizes.py [--max_function=80] [--max_class=150] [PATH ...]

Prints one line per violation (path:line kind name length) and exits 1 if any.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def violations(path: Path, max_function: int, max_class: int) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            length = node.end_lineno - node.lineno + 1
            limit = max_class if isinstance(node, ast.ClassDef) else max_function
            if length > limit:
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {kind} {node.name} "
                           f"{length} lines")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "gru_jax")])
    parser.add_argument("--max_function", type=int, default=80)
    parser.add_argument("--max_class", type=int, default=150)
    args = parser.parse_args()
    files = sorted(f for p in args.paths
                   for f in (Path(p).rglob("*.py") if Path(p).is_dir() else [Path(p)]))
    found = [v for f in files for v in violations(f.resolve(), args.max_function,
                                                   args.max_class)]
    print("\n".join(found) if found else "no function over the limits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
