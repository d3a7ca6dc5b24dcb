"""One error type for everything the user can fix; the CLI prints it on one line and exits 2.

A run stopped by a signal is :class:`Stopped`: the CLI prints its message and exits 128 + the signal's
number (130 for Ctrl-C / SIGINT, 143 for SIGTERM), the shell's convention.
"""

import signal


class GonError(Exception):
    """A problem with the user's input (a file, an option, a dataset), with a message that names it."""


class OptionError(GonError, ValueError):
    """A bad option value (:mod:`gon.core.settings`): a GonError for the CLI, and the ValueError a Python caller of a
    model's constructor has always caught."""


class Stopped(BaseException):
    """A signal (SIGINT, SIGTERM) stopped gon; ``message`` says what was kept.

    A BaseException, so that it unwinds through code that catches Exception, undoing what was begun (a run
    moved aside, temporary files), and not a KeyboardInterrupt, which Lightning's ``fit`` turns into ``exit(1)``.
    ``detail`` is None until the code that knows what was kept says so (:func:`gon.training.trainer.fit`).
    """

    def __init__(self, signum: int, detail: str | None = None):
        super().__init__(signum, detail)
        self.signum, self.detail = signum, detail

    @property
    def message(self) -> str:
        return (
            self.detail or f"stopped by {self.name}; files already written are complete, nothing half-written was kept"
        )

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def exit_code(self) -> int:
        return 128 + self.signum


def printable(text: str) -> str:
    """``text`` with the bytes of a non-UTF-8 file name (Python's surrogateescape) shown as ``\\xNN``: a message
    or a picture names the file exactly, and printing or drawing it cannot fail."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
