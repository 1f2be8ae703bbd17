"""The forecasting study: series tasks, sources, baselines, trained-run forecasts, report.

Importing this package registers its two tasks with the harness (``task.name``
``forecast``: a synthetic series; ``series``: a real one). The real series and
the ARIMA/ETS baselines need the ``series`` extra (``pip install -e .[series]``).
"""

from gru_jax.harness.tasks import register_task
from gru_jax.proj.series import forecast_task, tasks

register_task("forecast", forecast_task.make, forecast_task.DEFAULTS)
register_task("series", tasks.make, tasks.DEFAULTS)
