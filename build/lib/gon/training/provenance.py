"""Where a run came from: the versions of gon and its main libraries, the command line and the git commit.

``gon fit`` appends one record per session (a --resume is a new session) to RUN/provenance.json and the
report shows them, so that a number can be traced to the code and the command that produced it.
"""

from __future__ import annotations

import datetime
import json
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("gon", "torch", "lightning")


def versions() -> dict[str, str]:
    """Installed versions of gon, torch and Lightning (read from package metadata: nothing is imported)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def version_line() -> str:
    """``gon --version``: gon's version and the libraries it runs on."""
    v = versions()
    return f"gon {v['gon']} (torch {v['torch']}, Lightning {v['lightning']}, Python {sys.version.split()[0]})"


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the git checkout gon runs from (with ``+dirty`` for uncommitted changes); None outside one."""
    where = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed, quoted so that it can be pasted back into a shell."""
    args = sys.argv if argv is None else argv
    return shlex.join(["gon", *args[1:]] if args and Path(args[0]).name == "gon" else args)


def cpu() -> str:
    """The CPU's model and widest vector instructions: seeded figures depend on them (MKL picks its kernels by
    instruction set; README, "Seeded runs")."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    widest = next((isa for isa in ("avx512f", "avx2", "avx", "sse4_2", "asimd") if isa in flags), None)
    return f"{model} ({widest})" if widest else model


def provenance() -> dict[str, object]:
    """Everything above, for a run's record."""
    return {"versions": versions(), "command": command_line(), "git_commit": git_commit(), "cpu": cpu()}


def record_session(run: Path) -> dict[str, object]:
    """Append this session (time, command, versions, commit) to RUN/provenance.json; returns the record."""
    path = run / "provenance.json"
    try:
        sessions = json.loads(path.read_text())["sessions"] if path.is_file() else []
    except (ValueError, KeyError, TypeError):
        sessions = []  # a damaged record is replaced, not a reason to refuse training
    session = {"started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **provenance()}
    from gon.storage.atomic import write_text

    write_text(path, json.dumps({"sessions": [*sessions, session]}, indent=2) + "\n")
    return session
