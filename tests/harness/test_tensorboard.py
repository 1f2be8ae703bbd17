"""TensorBoard's own readers see what a real short run logged: scalars, the
||dL/dh_t|| image, and an HParams session that the HParams plugin turns into
one row per run of a sweep."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import make_tiny_config
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from gru_jax.harness.steps import make_schedule
from gru_jax.harness.train import train_and_evaluate

RUN = {"train.steps": 4, "train.eval_every": 2, "train.checkpoint_every": 2, "train.log_every": 1}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Two runs of a small sweep (hidden 8 and 6) in one logdir."""
    root = tmp_path_factory.mktemp("tb_sweep")
    summaries = {}
    for hidden in (8, 6):
        workdir = root / f"hidden={hidden}"
        summaries[hidden] = train_and_evaluate(
            make_tiny_config(**RUN, **{"model.hidden_size": hidden}), str(workdir))
    return root, summaries


def _accumulator(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars(sweep_dir):
    root, summaries = sweep_dir
    acc = _accumulator(root / "hidden=8")
    tags = set(acc.Tags()["scalars"])
    for tag in ("train/loss", "train/mse", "train/grad_norm", "train/learning_rate",
                "train/steps_per_sec", "eval/loss", "eval/mse", "diagnostics/grad_horizon",
                "gates/layer0_z_mean", "gates/layer0_z_saturated"):
        assert tag in tags, tag
    evals = acc.Scalars("eval/mse")
    summary = summaries[8]
    assert [e.step for e in evals] == [2, 4]
    want = [e["mse"] for e in summary["eval_history"]]
    np.testing.assert_allclose([e.value for e in evals], want, rtol=1e-6)  # float32 on disk
    assert acc.Scalars("diagnostics/grad_horizon")[-1].value == summary["grad_horizon"]
    # log_every 1: the learning rate of every step s is the schedule at s - 1.
    lr = acc.Scalars("train/learning_rate")
    schedule = make_schedule(make_tiny_config(**RUN).train)
    assert [e.step for e in lr] == [1, 2, 3, 4]
    np.testing.assert_allclose([e.value for e in lr], [float(schedule(s)) for s in range(4)],
                               rtol=1e-6)
    for e in acc.Scalars("gates/layer0_z_saturated"):
        assert 0.0 <= e.value <= 1.0


def test_image(sweep_dir):
    root, _ = sweep_dir
    acc = _accumulator(root / "hidden=8")
    assert "diagnostics/grad_norm_vs_t" in acc.Tags()["images"]
    images = acc.Images("diagnostics/grad_norm_vs_t")
    assert [im.step for im in images] == [2, 4]  # drawn at checkpoint steps
    png = Image.open(io.BytesIO(images[-1].encoded_image_string))
    assert png.format == "PNG" and png.size == (images[-1].width, images[-1].height)
    pixels = np.asarray(png.convert("RGB"))
    assert pixels.std() > 0  # something is drawn


def _hparams_data(acc, tag):
    content = acc.SummaryMetadata(tag).plugin_data.content
    return plugin_data_pb2.HParamsPluginData.FromString(content)


def test_hparams_session(sweep_dir):
    root, _ = sweep_dir
    acc = _accumulator(root / "hidden=6")
    tensors = acc.Tags()["tensors"]
    assert "_hparams_/session_start_info" in tensors
    start = _hparams_data(acc, "_hparams_/session_start_info").session_start_info
    assert start.hparams["model.cell"].string_value == "gru"
    assert start.hparams["model.hidden_size"].number_value == 6
    # typed values (remat is a bool here), and only what changes the training
    assert start.hparams["model.remat"].HasField("bool_value")
    assert start.hparams["model.remat"].bool_value is False
    assert start.hparams["train.learning_rate"].number_value == pytest.approx(1e-2)
    for watching in ("train.progress", "train.log_every", "train.keep_checkpoints"):
        assert watching not in start.hparams
    end = _hparams_data(acc, "_hparams_/session_end_info").session_end_info
    assert end.status == 1  # STATUS_SUCCESS


def test_hparams_plugin_lists_both_runs(sweep_dir):
    """The HParams plugin's own backend builds one session group per run, with
    hidden_size as a column and the eval scalars as metrics."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context

    root, summaries = sweep_dir
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(root))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(root))
    tb = base_plugin.TBContext(logdir=str(root), data_provider=provider, multiplexer=mux)
    ctx = backend_context.Context(tb)
    rctx = context.RequestContext()
    hparams_meta = ctx.hparams_metadata(rctx, "")
    assert set(hparams_meta) == {"hidden=8", "hidden=6"}
    experiment = ctx.experiment_from_metadata(rctx, "", True, hparams_meta,
                                              ctx.hparams_from_data_provider(rctx, "", 0))
    infos = {h.name: h for h in experiment.hparam_infos}
    size = infos["model.hidden_size"]
    assert (size.domain_interval.min_value, size.domain_interval.max_value) == (6.0, 8.0)
    assert size.differs and not infos["model.cell"].differs
    assert [v.string_value for v in infos["model.cell"].domain_discrete.values] == ["gru"]
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"eval/mse", "eval/loss", "train/loss"} <= metrics
    # The last eval/mse the plugin would show per run is the run's final mse.
    last = ctx.read_last_scalars(rctx, "", None)
    for hidden, summary in summaries.items():
        got = last[f"hidden={hidden}"]["eval/mse"].value
        assert got == pytest.approx(summary["final"]["mse"], rel=1e-6)
    json.dumps(summaries)  # the summaries are plain JSON


def test_writer_has_clus_metric_writer_methods_and_tensorboard_reads_them(tmp_path):
    from gru_jax.harness import tb

    w = tb.create_writer(str(tmp_path))
    image = np.zeros((6, 5, 3), np.uint8)
    image[2, 3] = (255, 0, 0)
    w.write_scalars(3, {"a": 1.5, "b": 2})
    w.write_images(3, {"img": image[None]})  # clu's [N, H, W, C]
    w.write_texts(3, {"note": "hello *world*"})
    w.write_hparams({"lr": 0.1, "cell": "gru"})
    w.flush()
    w.close()
    acc = _accumulator(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("a")] == [(3, 1.5)]
    png = acc.Images("img")[0].encoded_image_string
    decoded = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    np.testing.assert_array_equal(decoded, image)  # PNG is lossless: the same pixels
    (text,) = acc.Tensors("note")
    assert text.step == 3 and text.tensor_proto.string_val == [b"hello *world*"]
    start = _hparams_data(acc, "_hparams_/session_start_info").session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(0.1)


def test_a_writer_factory_replaces_the_tensorboard_writer(tmp_path):
    from gru_jax.harness import tb

    calls = []

    class Recorder:  # a stand-in for a clu / wandb writer: MetricWriter's methods only
        def __init__(self, logdir, purge_step=None):
            calls.append(("init", logdir, purge_step))

        def __getattr__(self, name):
            return lambda *a, **k: calls.append((name, *a))

    tb.set_writer_factory(Recorder)
    try:
        w = tb.create_writer(str(tmp_path), purge_step=5)
        w.write_scalars(1, {"x": 1.0})
        tb.end_session(object(), "done", 1)  # a writer without hparams_end: skipped
    finally:
        tb.set_writer_factory(tb.Writer)
    assert calls == [("init", str(tmp_path), 5), ("write_scalars", 1, {"x": 1.0})]
    assert isinstance(tb.create_writer(str(tmp_path)), tb.Writer)
