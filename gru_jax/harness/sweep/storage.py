"""Where a sweep's Optuna study lives: one storage URL.

- no URL: ``sqlite:///DIR/study.db``, a SQLite file inside the sweep's folder
  (embedded, nothing to start; the workers of one machine share it);
- ``postgresql://user@host/db`` (or any SQLAlchemy URL): a database server,
  for a cluster;
- ``journal:PATH`` (or a path ending in ``.log``): Optuna's journal file
  (`JournalFileBackend`), for a shared filesystem without a database server.

Every storage gets heartbeats: a running trial whose worker stops beating for
`grace` seconds is failed and put back in the queue by Optuna's
`RetryHeartbeatStaleTrialCallback` (RDB storages natively; the journal through
`JournalHeartbeatStorage`, which keeps the beat in a trial system attribute).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

from gru_jax.harness.errors import ConfigError

DB_FILE = "study.db"
STUDY_NAME = "sweep"
HEARTBEAT = 30  # seconds between a running trial's beats
GRACE = 120  # no beat for this long: the worker is gone, its trial is retried
MAX_RETRY = 20  # retries per point after lost workers (a crash loop stops somewhere)
BEAT_ATTR = "gru_jax:heartbeat"

optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per point is ours to print
# Heartbeats and their retry callback are marked experimental; we use them on purpose.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def default_url(workdir: str | os.PathLike) -> str:
    """The SQLite file inside the sweep's folder."""
    return f"sqlite:///{Path(workdir).resolve() / DB_FILE}"


class JournalHeartbeatStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with heartbeats: the beat is a trial system
    attribute (wall-clock time of the writing host; the hosts' clocks are assumed
    roughly in sync, as on a cluster with NTP)."""

    def __init__(self, backend, heartbeat: int, grace: int, callback):
        super().__init__(backend)
        self._interval, self._grace, self._callback = heartbeat, grace, callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # a copy of a retried trial carries its old beat: count from its claim
            started = t.datetime_start.timestamp() if t.datetime_start else 0.0
            beat = max(t.system_attrs.get(BEAT_ATTR, 0.0), started)
            if BEAT_ATTR in t.system_attrs and now - beat > self._grace:
                stale.append(t._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self):
        return self._callback


def open_storage(url: str | None, workdir: str | os.PathLike, *, heartbeat: int = HEARTBEAT,
                 grace: int = GRACE, max_retry: int | None = MAX_RETRY) -> BaseStorage:
    """The storage at `url` (default: `default_url(workdir)`), with heartbeats."""
    callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    if heartbeat < 1 or grace <= heartbeat:
        raise ConfigError(f"--heartbeat: need 1 <= heartbeat < grace, got {heartbeat}, {grace}")
    url = url or default_url(workdir)
    if url.startswith("journal:") or url.endswith(".log"):
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal:")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalHeartbeatStorage(JournalFileBackend(path), heartbeat, grace, callback)
    if "://" not in url:
        raise ConfigError(f"--storage: want sqlite:///FILE, postgresql://..., or "
                          f"journal:FILE, got {url!r}")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {
        "pool_pre_ping": True}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                grace_period=grace, heartbeat_stale_trial_callback=callback)
        except ImportError as e:
            raise ConfigError(f"--storage={url}: driver missing ({e}); "
                              "pip install 'gru_jax[sweep]'") from e
        except Exception as e:  # noqa: BLE001 - SQLAlchemy's: say which URL, in one line
            if "already exists" in str(e) and attempt < 4:
                time.sleep(0.2 * (attempt + 1))  # two launchers created the tables at once
                continue
            raise ConfigError(f"--storage={url}: cannot open ({type(e).__name__}: "
                              f"{str(e).splitlines()[0]})") from e
    raise AssertionError("unreachable")


def open_study(storage: BaseStorage, name: str = STUDY_NAME,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """The study `name` in `storage`, created on first use (a concurrent launcher's
    create is caught by load_if_exists: both join one study). Scores are minimised."""
    return optuna.create_study(storage=storage, study_name=name, direction="minimize",
                               load_if_exists=True, sampler=sampler)
