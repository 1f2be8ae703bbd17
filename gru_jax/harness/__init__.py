"""The experiment harness around the library: configs, tasks, trainer, sweep, search, report.

The library (``gru_jax`` top level: cells, scan, fused kernels, Flax modules,
interop) imports nothing from here; this package adds orbax, TensorBoard,
matplotlib and ml_collections on top of it (``pip install 'gru_jax[harness]'``).
Projects (`gru_jax.proj`) build on it; it imports nothing from them.

    config, cli         one schema of keys -> defaults, checks, --help; absl glue
    tasks/              the tasks and their registry (`register_task`)
    optimizers          train.optimizer: an optax name or a registered factory
    models, steps       the experiment model; pure train / eval steps
    diagnostics         dL/dh_t and the gradient horizon
    train/, chrono      train_and_evaluate (loop, session, programs, stop); step timing
    workdir, machine    the stored config checked on resume; where a run ran
    distributed         multi-host start (SLURM, JAX_COORDINATOR_ADDRESS)
    checkpoint, tb      Orbax checkpoints; the metric writer (clu's method names)
    summary, files      summary.json (RunSummary); the workdir's files, atomic JSON
    status, metrics     how a run ends; which way a metric is better
    keys, errors        dotted config keys; the one-line errors
    sweep, search       the engine
    report/             one loader (rows), one table writer (tables), one figure
                        module (figures); the sweep report
"""
