"""TensorBoard event files without TensorFlow: tensorboard's own EventFileWriter and protos.

One `Writer` per run, writing into the run's workdir, so a sweep folder
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

    values = np.asarray(values, np.float64)
    fig = Figure(figsize=(5, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.15, 0.16, 0.8, 0.74))
    ax.plot(np.arange(len(values)), values, lw=1.5)
    finite = values[np.isfinite(values)]
    if logy and finite.size and np.all(finite > 0):
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """(height, width) from a PNG's IHDR chunk."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return height, width


class Writer:
    """Scalars, images and an HParams session into an event file in `logdir`."""

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

    def scalars(self, step: int, values: dict) -> None:
        """{tag: number} at `step`."""
        from tensorboard.compat.proto import summary_pb2

        self._summary(step, [summary_pb2.Summary.Value(tag=t, simple_value=float(v))
                             for t, v in values.items()])

    def image(self, tag: str, step: int, png: bytes) -> None:
        """One PNG image at `step`."""
        from tensorboard.compat.proto import summary_pb2

        h, w = png_size(png)
        img = summary_pb2.Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=png)
        self._summary(step, [summary_pb2.Summary.Value(tag=tag, image=img)])

    def _hparams(self, step: int, tag: str, data) -> None:
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.hparams import metadata

        self._summary(step, [summary_pb2.Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(data),
            tensor=metadata.NULL_TENSOR)])
        self.flush()

    def hparams_start(self, hparams: dict) -> None:
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


class NullWriter:
    """Writer's interface, writing nothing: the TensorBoard run of every process
    but process 0 in a multi-host job (gru_jax.harness.distributed)."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None
