"""What a researcher reads on a terminal: a 2-point sweep's output, run under a pty
(so the progress bars are drawn), has one result line per finished run and never
a log line on a progress bar's row."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap

from conftest import ROOT, TINY, subprocess_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = re.compile(r"\d+%\|")  # tqdm's "50%|"


def run_in_pty(cmd: list[str], timeout: float = 300) -> str:
    """Run `cmd` with stdout and stderr on a terminal; everything it wrote."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env=subprocess_env(), cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=timeout)
    os.close(leader)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def test_two_point_sweep_console(tmp_path):
    experiment = tmp_path / "two.py"
    tiny = {**TINY, "train.progress": True, "train.steps": 6}
    experiment.write_text(textwrap.dedent(f"""
        from gru_jax.harness.config import apply_overrides, base_config

        def get_config():
            return apply_overrides(base_config("adding"), {tiny!r})

        def get_sweep():
            return [{{"seed": 0}}, {{"seed": 1}}]
    """))
    out = run_in_pty([sys.executable, str(ROOT / "scripts" / "sweep.py"),
                      f"--config={experiment}", f"--workdir={tmp_path / 'w'}"])
    rows = out.replace("\r\n", "\n").split("\n")
    assert any(BAR.search(r) for r in rows), out  # the bars were drawn
    # One result line per finished run, nothing else about it.
    for name in ("seed=0", "seed=1"):
        said = [r.split("\r")[-1] for r in rows if f"{name}:" in r.split("\r")[-1]]
        assert len(said) == 1 and ": done, step 6" in said[0], out
    # No row where a bar and text run together (text must start a fresh segment).
    for row in rows:
        for segment in row.split("\r"):
            bar = BAR.search(segment)
            if bar:
                assert "seed=" not in segment.split("]", 1)[-1] and "done" not in segment, row
    assert "2 points: 0 waiting, 0 running, 2 done, 0 failed" in out


def test_a_runs_last_line_says_solved_only_when_it_ended_solved():
    from gru_jax.harness.summary import RunSummary
    from gru_jax.harness.train.loop import one_line

    def line(solved, first):
        return one_line(RunSummary(status="done", step=800, solved=solved,
                                   steps_to_solve=first), "w")

    assert "| solved at step 300 |" in line(True, 300)
    # touched the threshold at step 300 and lost it by the end: not a solve
    assert "| not solved (at the threshold at step 300, not at the end) |" in line(False, 300)
    assert "| not solved |" in line(False, None)
