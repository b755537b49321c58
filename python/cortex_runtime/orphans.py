"""The processes a predictor starts stay with the process that runs it.

A batch worker makes itself the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER), so a
child that left its session or process group is still below it: the platform accounts for its
memory and stops it with the worker, and the worker stops what is left when it exits. (Replicas
do the same in the replica front.)"""

import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans():
    """Best effort: without prctl (not Linux) nothing changes."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def stop_children(grace_s=2.0):
    """SIGTERM to every child (adopted orphans included), SIGKILL after `grace_s`; the orphans
    of those become ours in turn, so repeat a few rounds."""
    me = os.getpid()
    for _ in range(4):
        children = _children(me)
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            _reap()
            if not any(p in _children(me) for p in children):
                break
            time.sleep(0.02)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap()
