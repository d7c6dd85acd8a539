"""No process the user's code starts outlives `nnlint --confirm`, and its threads do not delay nnlint's exit.

fixtures/confirm/forks/model.py starts, in its model's constructor, a multiprocessing.Process, one that
calls setsid, a subprocess, one in a new session, and a non-daemon thread, all sleeping 600 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _alive(pid: int) -> bool:
    """Running, a zombie not counted (dead, waiting for whoever adopted it to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_processes_and_threads_started_by_a_model_end_with_its_probe(tmp_path):
    pids = tmp_path / "pids"
    env = {**os.environ, "NNLINT_TEST_PIDS": str(pids)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "nnlint", "confirm/forks/model.py", "--confirm", "--format", "json"],
        cwd=FIXTURES, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - started
    assert '"NN301"' in done.stdout and '"confirmed"' in done.stdout, done.stdout + done.stderr
    assert took < 60, f"nnlint --confirm took {took:.0f} s"
    noted = [int(line) for line in pids.read_text().split()]
    assert len(noted) >= 4  # the model is built at least once
    deadline = time.monotonic() + 5  # SIGKILLed before nnlint exits; /proc may lag a moment
    while any(map(_alive, noted)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in noted if _alive(pid)] == []


def _left(pids: Path, patience: float = 5.0) -> list[int]:
    noted = [int(line) for line in pids.read_text().split()]
    assert len(noted) >= 4
    deadline = time.monotonic() + patience
    while any(map(_alive, noted)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in noted if _alive(pid)]


HANGS = (FIXTURES / "confirm" / "forks" / "model.py").read_text().replace(
    "        threading.Thread(target=time.sleep, args=(600,)).start()  # non-daemon\n",
    "        threading.Thread(target=time.sleep, args=(600,)).start()  # non-daemon\n        while True:\n            time.sleep(1)\n",
)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_probe_past_its_timeout_leaves_no_process(tmp_path):
    (tmp_path / "model.py").write_text(HANGS)
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint.confirm]\ntimeout = 3\n")
    pids = tmp_path / "pids"
    done = subprocess.run(
        [sys.executable, "-m", "nnlint", "model.py", "--confirm", "--format", "json"],
        cwd=tmp_path, env={**os.environ, "NNLINT_TEST_PIDS": str(pids)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "did not finish within 3 s" in done.stdout, done.stdout + done.stderr
    assert _left(pids) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_during_a_probe_leaves_no_process(tmp_path):
    """Ctrl-C reaches nnlint and its child at once, and nnlint then stops the child with SIGTERM: the
    second signal must not cut short the clean-up the first one started."""
    (tmp_path / "model.py").write_text(HANGS)
    pids = tmp_path / "pids"
    nnlint = subprocess.Popen(
        [sys.executable, "-m", "nnlint", "model.py", "--confirm"], cwd=tmp_path, start_new_session=True,
        env={**os.environ, "NNLINT_TEST_PIDS": str(pids)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (not pids.exists() or len(pids.read_text().split()) < 4) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        os.killpg(nnlint.pid, signal.SIGINT)  # what a terminal sends nnlint and its child (not the workers)
        nnlint.wait(timeout=30)
    finally:
        if nnlint.poll() is None:
            nnlint.kill()
    assert _left(pids) == []
