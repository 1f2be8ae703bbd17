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
