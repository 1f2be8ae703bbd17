"""TensorBoard event files without TensorFlow: tensorboard's own EventFileWriter and protos.

One `Writer` per run (`create_writer`), with the method names of clu's
`MetricWriter`, writing into the run's workdir, so a sweep folder
holding many workdirs is one TensorBoard logdir with one run per workdir.

* Scalars are ``simple_value`` summaries, images PNG-encoded ``Summary.Image``s
  (both read by the Scalars / Images dashboards and by ``EventAccumulator``).
* Hyperparameters go in as an HParams session: a session-start summary with
  the flattened config, a session-end summary with the status, in the same
  run as the scalars. No experiment summary is written: the HParams plugin
  then builds the table from every run's session and takes the metric
  columns from the runs' scalar tags, so runs of a sweep whose tasks report
  different metrics still combine.
* Resuming: `Writer(purge_step=s)` writes a SessionLog START at step s, which
  tells TensorBoard to drop what earlier sessions logged at steps >= s (a run
  resumed from the checkpoint at step c passes c + 1: what a killed session
  logged after its last checkpoint is logged again).

(tensorboardX writes the same protos, but imports torch when it is installed,
which costs seconds per process.)
"""

from __future__ import annotations

import io
import numbers
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

# Session end statuses of the HParams plugin (tensorboard/plugins/hparams/api.proto).
_STATUS = {"done": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE", "failed": "STATUS_FAILURE",
           "preempted": "STATUS_RUNNING"}  # it resumes when started again


def hparam_value(v):
    """A config value as a TensorBoard hparam: str, bool or float (anything else -> str)."""
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Real):
        return float(v)
    return str(v)


def plot_curve(values, *, title: str, xlabel: str, ylabel: str, logy: bool = True) -> bytes:
    """A line plot of values [n] against 0..n-1 as PNG bytes (matplotlib Agg, off screen)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    values = np.asarray(values, np.float64)
    fig = Figure(figsize=(5, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.15, 0.16, 0.8, 0.74))
    ax.plot(np.arange(len(values)), values, lw=1.5)
    finite = values[np.isfinite(values)]
    if logy and finite.size and np.all(finite > 0):
        ax.set_yscale("log")
        # Plain "1e-03" tick labels: the log axis's default ones are mathtext, whose
        # parse was ~20-30 ms of each image (of ~50-90 ms on the loaded CPU).
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title, fontsize=10, y=1.0)  # a fixed y: no tight-bbox pass over the ticks
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def encode_png(image) -> bytes:
    """uint8 [H, W, C] (or [N, H, W, C]: the first; C = 1, 3 or 4) as PNG bytes (matplotlib)."""
    from matplotlib.image import imsave

    image = np.asarray(image)
    image = image[0] if image.ndim == 4 else image
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"write_images: expected [H, W, C] with C in 1, 3, 4, got {image.shape}")
    buf = io.BytesIO()
    imsave(buf, image[..., 0] if image.shape[-1] == 1 else image, format="png",
           cmap="gray" if image.shape[-1] == 1 else None)
    return buf.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """(height, width) from a PNG's IHDR chunk."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return height, width


class Writer:
    """Scalars, images, texts and an HParams session into an event file in `logdir`.

    The methods are clu's `MetricWriter` (write_scalars, write_images, write_texts,
    write_hparams, flush, close), so a clu or wandb writer can stand in for this one
    (`set_writer_factory`); `hparams_end` (the session's status) is this writer's own
    and optional: callers skip it on a writer without it (`end_session`).
    """

    def __init__(self, logdir: str, *, purge_step: int | None = None, flush_secs: int = 30):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event_pb2 = event_pb2
        self._w = EventFileWriter(logdir, flush_secs=flush_secs)
        if purge_step is not None:
            self._add(event_pb2.Event(
                step=int(purge_step),
                session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

    def _add(self, event) -> None:
        event.wall_time = time.time()
        self._w.add_event(event)

    def _summary(self, step: int, values) -> None:
        from tensorboard.compat.proto import summary_pb2

        self._add(self._event_pb2.Event(step=int(step),
                                        summary=summary_pb2.Summary(value=values)))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """{tag: number} at `step`."""
        from tensorboard.compat.proto import summary_pb2

        self._summary(step, [summary_pb2.Summary.Value(tag=t, simple_value=float(v))
                             for t, v in scalars.items()])

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        """{tag: image} at `step`: an image is PNG bytes, or (clu's form) a uint8 array
        [H, W, C] or [N, H, W, C] (of a batch, the first)."""
        from tensorboard.compat.proto import summary_pb2

        values = []
        for tag, image in images.items():
            png = image if isinstance(image, bytes) else encode_png(image)
            h, w = png_size(png)
            img = summary_pb2.Summary.Image(height=h, width=w, colorspace=3,
                                            encoded_image_string=png)
            values.append(summary_pb2.Summary.Value(tag=tag, image=img))
        self._summary(step, values)

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        """{tag: markdown text} at `step` (TensorBoard's Text dashboard)."""
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.text import metadata
        from tensorboard.util import tensor_util

        self._summary(step, [summary_pb2.Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(tag, ""),
            tensor=tensor_util.make_tensor_proto(str(text))) for tag, text in texts.items()])

    def _hparams(self, step: int, tag: str, data) -> None:
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.hparams import metadata

        self._summary(step, [summary_pb2.Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(data),
            tensor=metadata.NULL_TENSOR)])
        self.flush()

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        """Open the HParams session with {name: value} (values through `hparam_value`)."""
        from tensorboard.plugins.hparams import metadata, plugin_data_pb2

        info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for k, v in hparams.items():
            v = hparam_value(v)
            if isinstance(v, bool):
                info.hparams[k].bool_value = v
            elif isinstance(v, str):
                info.hparams[k].string_value = v
            else:
                info.hparams[k].number_value = v
        self._hparams(0, metadata.SESSION_START_INFO_TAG,
                      plugin_data_pb2.HParamsPluginData(session_start_info=info))

    def hparams_end(self, status: str, step: int) -> None:
        """Close the HParams session with the run's status (done, diverged, failed, preempted)."""
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        info = plugin_data_pb2.SessionEndInfo(
            status=api_pb2.Status.Value(_STATUS.get(status, "STATUS_UNKNOWN")),
            end_time_secs=time.time())
        self._hparams(step, metadata.SESSION_END_INFO_TAG,
                      plugin_data_pb2.HParamsPluginData(session_end_info=info))

    def flush(self) -> None:
        self._w.flush()

    def close(self) -> None:
        self._w.close()

    # The trainer's earlier names (thin aliases).
    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.write_scalars(step, values)

    def image(self, tag: str, step: int, png: bytes) -> None:
        self.write_images(step, {tag: png})

    def hparams_start(self, hparams: Mapping[str, Any]) -> None:
        self.write_hparams(hparams)


WriterFactory = Callable[..., Any]  # (logdir, *, purge_step) -> a MetricWriter
_factory: WriterFactory = Writer


def set_writer_factory(factory: WriterFactory) -> None:
    """Make `create_writer` build `factory(logdir, purge_step=...)`: e.g. a clu
    ``metric_writers.create_default_writer`` or a wandb adapter with the same methods."""
    global _factory
    _factory = factory


def create_writer(logdir: str, *, purge_step: int | None = None):
    """A run's metric writer: this module's `Writer`, or what `set_writer_factory` chose."""
    return _factory(logdir, purge_step=purge_step)


def end_session(writer, status: str, step: int) -> None:
    """`writer.hparams_end(status, step)` where the writer has it (clu's writers do not)."""
    end = getattr(writer, "hparams_end", None)
    if end is not None:
        end(status, step)


class NullWriter:
    """Writer's interface, writing nothing: the TensorBoard run of every process
    but process 0 in a multi-host job (gru_jax.harness.distributed)."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None
