"""Atomic writes: every file and saved-model directory gon writes appears complete or not at all.

A file is written to a temporary ``.NAME.XXXX.tmp`` beside its target, flushed to disk (fsync),
renamed over the target (``os.replace`` is atomic on POSIX) and the directory entry is synced. A
process killed at any moment leaves the previous file or the new one, never a truncated one; the
temporary file of a killed writer is removed by the next write to the same target (one whose writer still runs is
left to it: two processes may write one file, as two shards of a sweep can).

A directory (a saved model) is built complete as a temporary sibling, then swapped in: with
``renameat2(RENAME_EXCHANGE)`` where the filesystem has it (one atomic step), else old aside / new in
(and :func:`recover_directory` puts the old one back if a kill fell between those two renames).

Files get the user's umask (0644 by default), as a plain ``open`` would give them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from gon.core.errors import GonError, printable

TEMP_SUFFIX = ".tmp"
OLD_SUFFIX = ".old"
#: what a failed write raises: the OS, torch ("unexpected pos"), Pillow, safetensors
WRITE_ERRORS = (OSError, RuntimeError, ValueError, SafetensorError)


def temp_sibling(path: Path, suffix: str = TEMP_SUFFIX) -> Path:
    """A fresh hidden name beside ``path``: ``.NAME.<pid>-<random>.tmp`` (the pid tells a live writer's file from a
    killed one's)."""
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _writer_alive(temp: Path) -> bool:
    """Whether the process that named ``temp`` (by :func:`temp_sibling`) is still running here."""
    pid = temp.name[: -len(temp.suffix)].rpartition(".")[2].partition("-")[0]
    if not pid.isascii() or not pid.isdigit() or int(pid) == os.getpid():
        return False  # an older name without a pid, or this process's own (it writes one file at a time)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def stale_siblings(path: Path, suffix: str = TEMP_SUFFIX) -> list[Path]:
    """Temporary siblings of ``path`` that an earlier, killed writer left behind."""
    return sorted(path.parent.glob(f".{glob_escape(path.name)}.*{suffix}")) if path.parent.is_dir() else []


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_failure(path: Path, error: BaseException, written: int | None = None) -> GonError:
    """The one message for a write that failed: the file, the reason, the free space and the space it needed
    (``written``: the bytes it had written when it failed) when the disk may be full."""
    reason = getattr(error, "strerror", None) or next(iter(str(error).splitlines()), "") or type(error).__name__
    try:
        free = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free
    except OSError:
        free = None
    full = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "unexpected pos" in reason
    refused = getattr(error, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM) or "os error 30" in reason
    if free is not None and not refused and (full or free < (64 << 20) or "write" in reason.lower()):
        needed = f", it needed at least {_size(written)}" if written else ""
        reason = f"{reason} (the disk has {_size(free)} free{needed}: is it full?)"
    return GonError(f"cannot write {printable(str(path))}: {reason}; the previous version (if any) is intact")


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


def discard(path: Path | None) -> None:
    """Remove a temporary file or folder, quietly: a clean-up that fails (a read-only disk) must not hide the
    error that made it necessary."""
    if path is None:
        return
    try:
        _remove(path)
    except OSError:
        pass


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Call ``write(binary_file)`` on a temporary file, fsync it and rename it onto ``path``.

    Any failure (full disk, read-only directory, quota, torch's or safetensors' own write errors)
    raises a GonError naming ``path`` and leaves the previous file at ``path`` untouched.
    """
    path = Path(path)
    tmp, written = None, None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in stale_siblings(path):
            if not _writer_alive(stale):  # (another process may be writing the same file: a sweep's two shards)
                _remove(stale)
        tmp = temp_sibling(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
        with os.fdopen(fd, "wb") as f:
            try:
                write(f)
                f.flush()
                os.fsync(f.fileno())  # the data is on disk before the name points at it
            except WRITE_ERRORS:
                written = _written(f)  # what it had given its file: the space it needed, at least
                raise
        os.replace(tmp, path)
        tmp = None
        fsync_directory(path.parent)  # ... and the rename itself survives a power cut
    except WRITE_ERRORS as e:
        raise write_failure(path, e, written) from None
    finally:
        discard(tmp)
    return path


def _written(f: Any) -> int | None:
    try:
        return f.tell()
    except (OSError, ValueError):
        return None


def with_umask(path: Path) -> Path:
    """``path`` given the mode a plain ``open`` would have given it (0666 less the umask): for files another
    library created with its own mode (safetensors writes 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8", "surrogateescape")))  # non-UTF-8 names kept


def save_picture(image: Any, path: str | Path) -> Path:
    """A PIL image, in the format of ``path``'s suffix."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise GonError(f"{path}: unknown picture format {path.suffix!r}; use .png or .jpg")
    return atomic_write(path, lambda f: image.save(f, format=fmt))


def save_figure(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """A matplotlib figure, in the format of ``path``'s suffix; its texts :func:`printable` (a title naming a run)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_text(printable(text.get_text()))
    path = Path(path)
    return atomic_write(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".") or "png", **savefig))


@contextmanager
def rust_readable(path: str | Path) -> Iterator[str]:
    """``path`` as safetensors' reader takes it: the path itself, or for a name that is not UTF-8 (which it
    refuses) the ``/proc/self/fd`` link of the file, opened here (Linux allows any bytes in a name)."""
    name = str(path)
    if name == printable(name):
        yield name
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # missing or unreadable: the caller's own error names it
        yield name
        return
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> None:
    """Every file under ``directory`` and the directory itself, on disk."""
    for file in directory.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_directory(directory)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def recover_directory(target: Path) -> None:
    """Undo a swap that a kill cut between its two renames: put the old directory back, drop temp copies."""
    target = Path(target)
    old = stale_siblings(target, OLD_SUFFIX)
    if not target.exists() and old:
        os.replace(old[-1], target)
        old = old[:-1]
    for leftover in old + stale_siblings(target):
        _remove(leftover)


def replace_directory(target: str | Path, build: Callable[[Path], Any]) -> Path:
    """Call ``build(folder)`` on an empty temporary sibling of ``target``, then swap it in for ``target``.

    A kill at any moment leaves either the old ``target`` or the new one, complete; a failure in
    ``build`` leaves ``target`` untouched and no temporary directory.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover_directory(target)
        tmp = temp_sibling(target)
        os.mkdir(tmp, 0o777)  # the umask applies
    except OSError as e:
        raise write_failure(target, e) from None
    try:
        build(tmp)
        fsync_tree(tmp)
        if not target.exists():
            os.rename(tmp, target)
        elif not _exchange(tmp, target):  # (after an exchange, tmp holds the old directory: removed below)
            aside = temp_sibling(target, OLD_SUFFIX)
            os.rename(target, aside)
            os.rename(tmp, target)
            _remove(aside)
        fsync_directory(target.parent)
    except WRITE_ERRORS as e:
        raise write_failure(target, e) from None
    finally:
        discard(tmp)
    return target
