"""One source for every setting: an :class:`Option` says a setting's name, type, default, choices, bounds and
help, and checks a value against them.

A model's options are not written anywhere else: :func:`options_of` reads them from its constructor's
signature (names, types, defaults) and the class constant ``OPTION_INFO`` (help, choices, bounds;
merged along the class hierarchy). ``gon fit``'s model flags, the YAML ``model_options`` keys and
the check of a saved model's config.json are all built from that. Run settings, benchmark settings
and command-line numbers are checked with the same :meth:`Option.check`, so a bad value gets the
same one-line error wherever it enters: the key, the flag and the value named.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from gon.core.errors import GonError, OptionError

_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # YAML 1.1 reads "1e-4" as a string
_INT_TEXT = re.compile(r"\s*[+-]?\d{1,4000}\s*")  # (Python reads at most 4300 digits)
_SHOWN = 60  # characters of a bad value shown in a message


@dataclass(frozen=True)
class Info:
    """What a signature cannot say about an option: its help text, its choices, its bounds."""

    help: str = ""
    choices: tuple | None = None
    low: float | None = None  # value >= low (> low when low_open)
    high: float | None = None  # value <= high
    low_open: bool = False
    high_note: str = ""  # what the upper bound is (this machine's CPUs): said when a value passes it

    def option(self, name: str, hint: Any, default: Any) -> Option:
        """The full :class:`Option` of a setting with this info, its type hint and its default."""
        return Option(
            name, hint, default, self.help, self.choices, self.low, self.high, self.low_open, high_note=self.high_note
        )


@dataclass(frozen=True)
class Option:
    """One setting: ``name`` is the YAML key and the keyword; ``--name-with-dashes`` the flag."""

    name: str
    type: Any  # a type hint: int, float, bool, str, int | None, tuple[int, int] | int ...
    default: Any = None
    help: str = ""
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    cli_flag: str | None = None  # when the flag is not --name-with-dashes (e.g. -n)
    high_note: str = ""

    @property
    def flag(self) -> str:
        return self.cli_flag or "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """The help text with the choices and the real default, for ``--help``."""
        parts = [self.help] if self.help else []
        if self.choices:
            parts.append(f"one of {', '.join(map(str, self.choices))}")
        if self.default is not None and self.default is not False:
            parts.append(f"default {self.default}")
        return "; ".join(parts).replace("%", "%%")

    def parse(self, text: str) -> Any:
        """A command-line value as this option takes it ("32" an int, "1e-4" a float, where the type allows);
        other text unchanged, for :meth:`check` to refuse in one line (argparse's own type errors print its usage).
        """
        if _allows(self.type, int) and _INT_TEXT.fullmatch(text):
            return int(text)
        return _coerce(text, self.type)

    def check(self, value: Any, where: str = "") -> Any:
        """``value`` as this option takes it (a YAML string "1e-4" becomes a float), or a GonError naming the
        option, its flag and the value when its type, choice, bound or finiteness is wrong."""
        value = _coerce(value, self.type)
        if not _matches(value, self.type):
            raise self.error(f"should be {_type_name(self.type)}", value, where)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error("must be a finite number", value, where)
        if value is None or isinstance(value, bool):
            return value
        if self.choices is not None and value not in self.choices:
            raise self.error(f"must be one of {', '.join(map(str, self.choices))}", value, where)
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, (int, float)):
                self._check_bounds(item, value, where)
        return value

    def _check_bounds(self, number: float, value: Any, where: str) -> None:
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            raise self.error(f"must be {'>' if self.low_open else '>='} {self.low:g}", value, where)
        if self.high is not None and number > self.high:
            raise self.error(
                f"must be <= {self.high:g}" + (f" ({self.high_note})" if self.high_note else ""), value, where
            )

    def error(self, what: str, value: Any, where: str = "") -> OptionError:
        shown = repr(value)
        shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "..."
        return OptionError(f"{where + ': ' if where else ''}option {self.name} ({self.flag}) {what}, got {shown}")


def check(name: str, value: Any, where: str = "", **rules: Any) -> Any:
    """Check one value against ``rules`` (``type``, ``low``, ``high``, ``choices``, ``cli_flag``...): an
    :class:`Option` made on the spot, for settings that live outside a schema (a benchmark's, a command's)."""
    return Option(name, rules.pop("type", type(value)), **rules).check(value, where)


def check_flag(flag: str, value: Any, **rules: Any) -> Any:
    """:func:`check` for a command-line value named by its flag (``-n``, ``--batch-size``)."""
    return check(flag.lstrip("-").replace("-", "_"), value, cli_flag=flag, **rules)


def options_of(cls: type) -> dict[str, Option]:
    """A class's options: its constructor's keyword parameters (type hints, defaults) with the ``OPTION_INFO``
    of the class and its bases (help, choices, bounds); a subclass's entry wins over its base's."""
    info: dict[str, Info] = {}
    for klass in reversed(cls.__mro__):
        info.update(vars(klass).get("OPTION_INFO", {}))
    hints = typing.get_type_hints(cls.__init__)
    options = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = None if param.default is inspect.Parameter.empty else param.default
        options[name] = info.get(name, Info()).option(name, hints.get(name, Any), default)
    return options


def extend_signature(own, base, leave_out: tuple[str, ...] = ()) -> inspect.Signature:
    """The signature of a constructor that takes its base class's options too, with type hints evaluated.

    ``own``: the class's own ``__init__``, or None when it has none; when it ends in ``**options``, its
    signature is its own parameters, then those of ``base`` (the base class's ``__init__``) it does not name,
    less ``leave_out`` (base options the class does not take). So each option is written once, in the class
    that introduces it, and its subclasses add only theirs.
    """
    if own is None:
        params = list(_evaluated(base).parameters.values())
        return inspect.Signature([p for p in params if p.name not in leave_out])
    params = list(_evaluated(own).parameters.values())
    if params[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        return inspect.Signature(params)
    named = {p.name for p in params} | set(leave_out)
    inherited = [p for p in _evaluated(base).parameters.values() if p.name not in named]
    return inspect.Signature(params[:-1] + inherited)


def _evaluated(function) -> inspect.Signature:
    """``function``'s signature with its string annotations (``from __future__ import annotations``) evaluated."""
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    return signature.replace(parameters=params, return_annotation=inspect.Signature.empty)


def required(cls: type) -> list[str]:
    """The constructor parameters of ``cls`` without a default."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.default is inspect.Parameter.empty]


def check_options(schema: dict[str, Option], values: Any, where: str = "", owner: str = "") -> dict[str, Any]:
    """``values`` checked against ``schema``: a mapping of known names, each value valid; returns the checked
    values (coerced). ``owner`` names what takes them in messages (e.g. "model 'gon'")."""
    if not isinstance(values, dict):
        raise GonError(f"{where + ': ' if where else ''}options should be a mapping of names to values, got {values!r}")
    checked = {}
    for key, value in values.items():
        if key not in schema:
            of = f"{owner} has no option" if owner else "unknown option"
            raise GonError(f"{where + ': ' if where else ''}{of} {key!r}; its options: {', '.join(schema)}")
        checked[key] = schema[key].check(value, where)
    return checked


def _coerce(value: Any, hint: Any) -> Any:
    """Numbers YAML reads as strings ("1e-4") become floats where a float is expected; nothing else changes."""
    if isinstance(value, str) and _allows(hint, float) and not _allows(hint, str) and _FLOAT_TEXT.fullmatch(value):
        return float(value)
    return value


def _allows(hint: Any, kind: type) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_allows(h, kind) for h in typing.get_args(hint))
    return hint is kind


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list):  # JSON and YAML have no tuples: a list stands for either
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        items_ok = all(any(_matches(v, a) for a in args) for v in value) if isinstance(value, (list, tuple)) else False
        return items_ok if args else isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
