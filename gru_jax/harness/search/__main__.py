"""python -m gru_jax.harness.search DIR_OR_STORAGE [...]: the searches' comparison table."""

import sys

from gru_jax.harness.search.report import compare

print(compare(sys.argv[1:]))
