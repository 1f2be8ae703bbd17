"""How a run ends: its status in summary.json, why it stopped, the exit code of a preempted run."""

STATUSES = ("done", "diverged", "failed", "preempted")
FINISHED = ("done", "diverged")  # a run in one of these states is never run again
STOP_REASONS = ("solved", "budget", "diverged", "preempted", "failed")
EXIT_PREEMPTED = 143  # 128 + SIGTERM: what a shell reports for a process ended by SIGTERM
