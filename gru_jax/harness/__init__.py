"""The experiment harness around the library: configs, tasks, trainer, sweep, search, report.

The library (``gru_jax`` top level: cells, scan, fused kernels, Flax modules,
interop) imports nothing from here; this package adds orbax, TensorBoard,
matplotlib and ml_collections on top of it.
"""
