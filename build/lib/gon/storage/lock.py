"""One writer per run directory: ``RUN/gon.lock`` holds an exclusive ``flock`` and says who holds it.

The lock file records the holder's PID, host, start time and command. A second writer (fit,
``--resume``, ``--overwrite``, report) gets a one-line error naming the holder. The kernel releases a
``flock`` when its process dies, so a lock file left by a killed process is free: it is reported as
stale and taken over. Within one process the lock is re-entrant (fit writes its own report).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from gon.core.errors import GonError

LOCK_NAME = "gon.lock"
_held: dict[Path, tuple[int, int]] = {}  # directory -> (fd, depth) held by this process


def describe_holder(record: dict) -> str:
    started = record.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return f"process {record.get('pid', '?')} on {record.get('host', '?')} (since {when}: {record.get('command', '?')})"


def _read_record(fd: int) -> dict:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


@contextmanager
def run_lock(directory: str | Path, what: str = "write"):
    """Hold ``directory``'s lock for the ``with`` block (creating the directory's lock file if needed)."""
    directory = Path(directory).resolve()
    if directory in _held:
        fd, depth = _held[directory]
        _held[directory] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[directory]
            _held[directory] = (fd, depth - 1)
        return
    fd = acquire(directory, what)
    _held[directory] = (fd, 1)
    try:
        yield
    finally:
        del _held[directory]
        release(directory, fd)


def acquire(directory: Path, what: str) -> int:
    """Take the lock (non-blocking) or raise a GonError naming its holder; returns the lock's fd."""
    path = directory / LOCK_NAME
    for _ in range(10):  # a holder that releases removes the file: lock the file that is there now
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise GonError(
                f"output directory {directory} is not writable: {e.strerror or e} (gon locks it to {what} it)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(_read_record(fd))
            os.close(fd)
            raise GonError(f"{directory} is in use by gon {holder}; wait for it to finish or stop it first") from None
        if path.exists() and os.path.samestat(os.fstat(fd), path.stat()):
            break
        os.close(fd)
    else:
        raise GonError(f"cannot lock {directory}: its lock file keeps changing")
    previous = _read_record(fd)
    if previous:  # a record with a free lock: its process died without cleaning up
        print(f"gon: taking over the stale lock of {directory}: {describe_holder(previous)} is gone", file=sys.stderr)
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": round(time.time(), 3),
        "command": " ".join(["gon", *sys.argv[1:]])[:300],
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
    except OSError as e:  # a full or read-only disk: no lock (and no empty gon.lock) is left behind
        release(directory, fd)
        raise GonError(
            f"cannot write {path}: {e.strerror or e} (gon locks {directory} to {what} it; is the disk full?)"
        ) from None
    return fd


def release(directory: Path, fd: int) -> None:
    """Unlock and remove the lock file (a clean stop leaves no lock behind)."""
    path = directory / LOCK_NAME
    try:
        if path.exists() and os.path.samestat(os.fstat(fd), path.stat()):
            path.unlink()
    except OSError:
        pass
    os.close(fd)


def holder_of(directory: str | Path) -> str | None:
    """Who holds ``directory``'s lock right now, or None when it is free."""
    if Path(directory).resolve() in _held:
        return None  # this process
    path = Path(directory) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return describe_holder(_read_record(fd))
    finally:
        os.close(fd)
    return None
