"""One error type for everything the user can fix; the CLI prints it on one line and exits 2."""


class GonError(Exception):
    """A problem with the user's input (a file, an option, a dataset), with a message that names it."""


class OptionError(GonError, ValueError):
    """A bad option value (:mod:`gon.settings`): a GonError for the CLI, and the ValueError a Python caller of a
    model's constructor has always caught."""
