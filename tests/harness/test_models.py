"""The experiment model's spec: the config's model keys, with the config's defaults."""

from __future__ import annotations

import dataclasses


def test_model_spec_has_the_configs_model_keys_and_defaults():
    from gru_jax.harness.config import SCHEMA
    from gru_jax.harness.models import ModelSpec, model_spec

    keys = {k.name.removeprefix("model."): k.default for k in SCHEMA if k.name.startswith("model.")}
    assert [f.name for f in dataclasses.fields(ModelSpec)] == list(keys)
    assert dataclasses.asdict(model_spec({})) == keys
    assert model_spec({"cell": "lstm"}).cell == "lstm"


def test_the_model_is_the_librarys_stacked_layers_with_the_runs_numbers():
    """init_model's layers are init_stacked's (one direction) with the numbers every
    run before it had: layer l from split(key, L + 1)[l] by the cell's own init, the
    head from the last key; apply_model is stacked_scan's last layer under the head."""
    import jax
    import numpy as np

    from gru_jax.cells import get_cell
    from gru_jax.harness.models import apply_model, init_model
    from gru_jax.stacked import stacked_scan

    spec = {"cell": "lstm", "hidden_size": 5, "num_layers": 3}
    key = jax.random.key(7)
    params = init_model(key, spec, 3, 2)
    keys = jax.random.split(key, 4)
    for i, (k, size) in enumerate(zip(keys[:3], (3, 5, 5), strict=True)):
        want = get_cell("lstm").init(k, size, 5)
        for name, v in want.items():
            np.testing.assert_array_equal(params["layers"][i][name], v, err_msg=f"{i} {name}")
    w = jax.nn.initializers.lecun_normal()(keys[-1], (5, 2), np.float32)
    np.testing.assert_array_equal(params["head"]["w"], w)
    x = jax.random.normal(jax.random.key(8), (2, 6, 3))
    _, hs = stacked_scan("lstm", [{"fwd": p} for p in params["layers"]], x)
    np.testing.assert_array_equal(apply_model(params, x, spec, "sequence"),
                                  hs @ params["head"]["w"] + params["head"]["b"])
