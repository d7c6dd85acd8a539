"""The confirm pass's child process: `python -m nnlint.confirm.child` reads a JSON request on stdin.

It imports torch once, then forks one worker per file (up to `parallel` at a
time) so that each file pays neither torch's import nor the others' crashes.
A worker runs with an address-space cap, its stdout/stderr in a log file,
and is killed (with its process group) past the timeout. Whatever the user's code
starts outlives no probe: each worker leads its own process group, killed when
the worker ends (done, crashed or timed out), and this process is the
subreaper of everything below it (Linux), so that processes that left the group
(`setsid`) are re-parented here when their parent dies, and killed. For each job the
child prints one JSON line on stdout: `{"job": i, "outcome": ..., "reason": ...}`;
the worker's verdicts are in `<workdir>/<i>.json`.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from nnlint.confirm.protocol import ProbeFinding, unverifiable

MIB = 1024 * 1024


def _run_job(job: dict, project: dict, on_model: Callable[[str], None]) -> dict:
    """Verdicts for the job's findings, and what the universal probes found (runs in the worker)."""
    if "target" in job:  # `nnlint probe MODULE:CALLABLE`
        from nnlint.confirm.target import probe_target

        return probe_target(job, project)
    from nnlint.confirm.universal import runtime_findings
    from nnlint.confirm.session import ProbeSession
    from nnlint.rule import rule_by_code

    session = ProbeSession(job["path"], project)
    session.on_model = on_model
    # The universal probes first: eval randomness must copy the model before any forward with gradients on.
    found, failed = [], []
    if job["universal"]:
        try:
            found, failed = runtime_findings(session, job["findings"])
        except (Exception, SystemExit) as error:  # e.g. the file's import fails: the verdicts still get made
            traceback.print_exc()
            what = f"sys.exit({error.code!r})" if isinstance(error, SystemExit) else f"{type(error).__name__}: {error}"
            failed = [f"loading or probing it raised {what}"]
        else:  # the R-only check of models declared with a loss in the configuration (NN505)
            from nnlint.confirm.initial_loss import initial_loss_findings

            try:
                found.extend(initial_loss_findings(session))
            except Exception as error:  # a model fails this forward: said, the other findings kept
                failed.append(f"the initial loss probe (NN505) raised {type(error).__name__}: {str(error)[:200]}")
    verdicts = {}
    for record in job["findings"]:
        finding = ProbeFinding(record["code"], record["path"], record["line"], record["message"], record["facts"] or {})
        try:
            with session.charging(finding.code):
                verdict = rule_by_code(finding.code).runtime_check(finding, session)
        except Exception as error:  # the user's code failed under the probe (or the check has a bug): say so
            verdict = unverifiable(f"the probe failed: {type(error).__name__}: {error}")
        verdicts[record["index"]] = verdict.to_json()
    return {
        "verdicts": verdicts,
        "runtime_findings": [vars(f) for f in found],
        "failure": "; ".join(failed) or None,
        "models": session.model_counts(),
        **session.pass_counts(),
    }


def _worker(index: int, job: dict, request: dict, progress: int) -> None:
    """The forked worker: isolate, cap, run, write the result; never returns (`os._exit`, so that no
    non-daemon thread of the user's keeps it alive). It names each model it builds on the `progress`
    pipe (one short line: atomic beside the other workers' lines)."""
    workdir = Path(request["workdir"])
    os.setpgid(0, 0)  # the parent does it too: whichever runs first, the group exists before user code
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the child's stop handlers are not the user's
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    log = os.open(workdir / f"{index}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    faulthandler.enable(file=sys.stderr)  # a segfault leaves its Python stack in the log
    limit = request["memory_mb"] * MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        def on_model(name: str) -> None:
            os.write(progress, json.dumps({"job": index, "model": name[:200]}).encode() + b"\n")

        result = {"ok": _run_job(job, {**request["project"], "memory_mb": request["memory_mb"]}, on_model)}
    except BaseException as error:  # SystemExit and KeyboardInterrupt from user code included
        traceback.print_exc()
        what = f"sys.exit({error.code!r})" if isinstance(error, SystemExit) else f"{type(error).__name__}: {error}"
        result = {"error": f"loading or probing it raised {what}"}
    sys.stdout.flush()
    sys.stderr.flush()
    (workdir / f"{index}.json").write_text(json.dumps(result))
    os._exit(0)


def _ended(index: int, status: int, workdir: Path) -> tuple[str, str]:
    if (workdir / f"{index}.json").exists():
        return "done", ""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return "crashed", f"the probe process was killed by {signal.Signals(number).name}"
    return "crashed", f"the probe process exited with status {os.WEXITSTATUS(status)} (os._exit in the user's code?)"


class _Stopped(Exception):
    """SIGTERM or SIGINT reached the child (the parent gave up, or Ctrl-C): end every worker's group first."""


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class _StopOnce:
    """The stop handler: only the first signal interrupts. Ctrl-C reaches nnlint and this process at
    once, and nnlint then sends SIGTERM; a second `_Stopped` raised inside the clean-up the first one
    started would abort it and leave the workers running."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self, signum, frame) -> None:
        if not self.stopped:
            self.stopped = True
            raise _Stopped(signal.Signals(signum).name)


def serve(request: dict) -> None:
    import torch  # once, before forking: every worker inherits it

    torch.set_num_threads(1)  # small probes: threads cost more than they give, and workers run side by side
    from nnlint.rule import all_rules

    all_rules()
    _become_subreaper()
    stop = _StopOnce()
    for number in _STOP_SIGNALS:
        signal.signal(number, stop)
    running: dict[int, tuple[int, float]] = {}  # pid -> (job index, start)
    try:
        _serve(request, running)
    except _Stopped:
        pass
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # a second Ctrl-C does not cut the clean-up short
        for pid in running:
            _kill_group(pid)
        for pid in running:
            _reap(pid)
        running.clear()
        _kill_strays(running)


def _serve(request: dict, running: dict[int, tuple[int, float]]) -> None:
    pending = list(enumerate(request["jobs"]))
    workdir = Path(request["workdir"])
    progress_in, progress_out = os.pipe()
    os.set_blocking(progress_in, False)
    while pending or running:
        while pending and len(running) < request["parallel"]:
            index, job = pending.pop(0)
            sys.stdout.flush()
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # no stop handler runs in a fresh worker
            pid = os.fork()
            if pid == 0:
                os.close(progress_in)
                _worker(index, job, request, progress_out)
            try:
                os.setpgid(pid, pid)  # as the worker does: no killpg can miss the group
            except OSError:
                pass  # the worker did it first, or is gone already
            running[pid] = (index, time.monotonic())
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        _forward_progress(progress_in)
        pid = _exited()
        if pid:
            if pid not in running:  # a user process re-parented here (this is its subreaper)
                _reap(pid)
                continue
            index, _ = running.pop(pid)
            _kill_group(pid)  # while its leader is a zombie, the group's id cannot be reused
            status = _reap(pid)
            _kill_strays(running)
            outcome, reason = _ended(index, status, workdir)
            print(json.dumps({"job": index, "outcome": outcome, "reason": reason}), flush=True)
            continue
        now = time.monotonic()
        for pid, (index, started) in list(running.items()):
            if now - started > request["timeout"]:
                _kill_group(pid)
                _reap(pid)
                del running[pid]
                _kill_strays(running)
                reason = f"the probe did not finish within {request['timeout']} s (an endless loop or a hang?)"
                print(json.dumps({"job": index, "outcome": "timeout", "reason": reason}), flush=True)
        time.sleep(0.01)


def _become_subreaper() -> None:
    """Orphans of the user's processes are re-parented to this process instead of init (Linux's
    PR_SET_CHILD_SUBREAPER), so that those that left their worker's process group can still be found."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # not Linux: the process groups alone


def _exited() -> int:
    """A child that has exited, left unreaped (a zombie keeps its pid and process group), or 0."""
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return 0
    return info.si_pid if info else 0


def _reap(pid: int) -> int:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left in it


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process /proc shows (empty without /proc)."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        state, ppid, pgrp = text[text.rfind(b")") + 2 :].split()[:3]  # the command name may hold spaces
        table[int(name)] = (int(ppid), int(pgrp), state.decode())
    return table


def _kill_strays(running: dict, patience: float = 3.0) -> None:
    """Kill every process below this one that no running worker owns, until none is left: what the
    user's code started outside its worker's group (`setsid`), re-parented here as its parents die.
    The descendants of running workers, and orphans still in a running worker's group, are left alone."""
    me = os.getpid()
    deadline = time.monotonic() + patience
    while True:
        table = _processes()
        below: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            below.setdefault(ppid, []).append(pid)
        strays, stack = [], [pid for pid in below.get(me, []) if pid not in running and table[pid][1] not in running]
        while stack:
            pid = stack.pop()
            strays.append(pid)
            stack.extend(below.get(pid, []))
        if not strays:
            return
        for pid in strays:
            if table[pid][2] != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for pid in below.get(me, []):
            if pid in strays:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        if time.monotonic() > deadline:
            return  # e.g. a process stuck in uninterruptible sleep: it is killed when it wakes
        time.sleep(0.005)


def _forward_progress(pipe: int) -> None:
    """The model lines the workers wrote, passed on to the parent (which shows them on a terminal)."""
    try:
        lines = os.read(pipe, 65536)
    except BlockingIOError:
        return
    if lines:
        sys.stdout.buffer.write(lines)
        sys.stdout.flush()


if __name__ == "__main__":
    serve(json.load(sys.stdin))
