"""Checks every input passes where it enters gon: capped JSON / YAML reading, finite numbers, memory.

Files are read with a size cap (``--config /dev/zero`` stops after a few MiB), YAML with a cap on
aliases and nesting (a "billion laughs" file fails in milliseconds), JSON with a nesting cap. Numbers
must be finite wherever they enter: flags, YAML, config.json, checkpoints, weights. A model or a
request whose memory cannot fit in this machine is refused before anything is allocated.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gon.core.errors import GonError
from gon.core.settings import check_options, options_of

if TYPE_CHECKING:
    import torch

MAX_CONFIG_BYTES = 4 << 20  # YAML configs, config.json, config.yaml: a real one is a few KiB
MAX_DEPTH = 64  # nesting of lists / mappings in a config
MAX_ALIASES = 64  # YAML aliases (*name) in one file
MAX_SHOWN = 80  # characters of a value quoted in a message
MAX_INT_DIGITS = 19  # integers in a config: 64-bit (converting a 400-digit one is slow; no setting needs it)


def torch_device(name: str, flag: str = "--device") -> torch.device:
    """The device ``name`` asks for (``auto``: CUDA when present), or a one-line GonError naming ``flag``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise GonError(f"{flag} {shown(name)} is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GonError(f"{flag} {name}: CUDA is not available on this machine")
    try:  # an index past the last GPU, a backend this torch was built without (mps, xpu...)
        torch.empty(0, device=device)
    except Exception as e:
        reason = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise GonError(f"{flag} {name}: not usable on this machine ({reason})") from None
    return device


def shown(value: Any) -> str:
    """``repr(value)``, cut short for a one-line message."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 20]}...{text[-12:]} ({len(text)} characters)"


# -- files ----------------------------------------------------------------------------------------
def read_capped(path: str | Path, what: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """The text of a file of at most ``limit`` bytes (a device or FIFO is read only that far), UTF-8."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise GonError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise GonError(f"{what} {path} is a directory, not a file") from None
    except OSError as e:
        raise GonError(f"{what} {path} is not readable: {e.strerror or e}") from None
    if len(data) > limit:
        raise GonError(f"{what} {path} is larger than {limit >> 20} MiB: not a gon configuration")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GonError(f"{what} {path} is not UTF-8 text (byte {e.start})") from None


class _CappedLoader(yaml.SafeLoader):
    """safe_load's loader with a cap on aliases and on nesting depth."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name): refused, as in a 'billion laughs' file")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node):
        if len(node.value.lstrip("+-").replace("_", "")) > MAX_INT_DIGITS:  # bounded before conversion
            raise yaml.YAMLError(f"line {node.start_mark.line + 1}: {too_long_int(node.value)}")
        return super().construct_yaml_int(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:  # safe_load keeps the last silently
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: key {shown(key)} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_CappedLoader.add_constructor("tag:yaml.org,2002:int", _CappedLoader.construct_yaml_int)


def too_long_int(text: str) -> str:
    return f"an integer of {len(text.lstrip('+-'))} digits ({shown(text)}): gon's settings are 64-bit at most"


def _bounded_int(text: str) -> int:
    if len(text.lstrip("+-")) > MAX_INT_DIGITS:
        raise ValueError(too_long_int(text))
    return int(text)


def read_yaml_capped(path: str | Path, what: str = "config file") -> Any:
    """A YAML file's value: size, aliases and depth capped, no Python tags, numbers finite."""
    text = read_capped(path, what)
    try:
        value = yaml.load(text, Loader=_CappedLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise GonError(f"{what} {path} is not readable YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise GonError(f"{what} {path} is nested too deeply") from None
    check_tree(value, f"{what} {path}")
    return value


def read_json_capped(path: str | Path, what: str = "file") -> Any:
    """A JSON file's value: size and depth capped, numbers finite (JSON's NaN/Infinity refused)."""
    text = read_capped(path, what)
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int)
    except (json.JSONDecodeError, ValueError) as e:
        raise GonError(f"{what} {path} is not readable JSON: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise GonError(f"{what} {path} is nested too deeply") from None
    check_tree(value, f"{what} {path}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def check_tree(value: Any, where: str) -> None:
    """Nesting at most MAX_DEPTH deep and every float finite, walked without recursion."""
    stack = [(value, 1, "")]
    while stack:
        item, depth, key = stack.pop()
        if depth > MAX_DEPTH:
            raise GonError(f"{where} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, float) and not math.isfinite(item):
            name = f"option {key} (--{key.replace('_', '-')})" if key else "a value"
            raise GonError(f"{where}: {name} must be a finite number, got {item}")
        if isinstance(item, dict):
            stack += [(v, depth + 1, str(k)[:MAX_SHOWN]) for k, v in item.items()]
        elif isinstance(item, (list, tuple)):
            stack += [(v, depth + 1, key) for v in item]


# -- numbers --------------------------------------------------------------------------------------
def finite(value: Any, name: str) -> float:
    """``value`` as a finite float, or a GonError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GonError(f"{name} must be a number, got {shown(value)}") from None
    if not math.isfinite(number):
        raise GonError(f"{name} must be a finite number, got {shown(value)}")
    return number


def in_range(value: Any, name: str, low: float | None = None, high: float | None = None) -> Any:
    """``value`` if ``low <= value <= high`` (and finite), else a GonError naming ``name`` and the range."""
    number = finite(value, name)
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        raise GonError(f"{name} must be {bounds}, got {shown(value)}")
    return value


# -- memory ---------------------------------------------------------------------------------------
def available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable (Linux), else physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 1 << 62  # unknown: do not refuse


def check_memory(need_bytes: float, what: str, hint: str = "") -> None:
    """Refuse up front a request that cannot fit in this machine's memory."""
    free = available_memory()
    if need_bytes > free:
        raise GonError(
            f"{what} needs about {readable_size(need_bytes)} of memory, more than the {readable_size(free)} "
            f"available{'; ' + hint if hint else ''}"
        )


def readable_size(size: float) -> str:
    """Bytes in GiB for a message, in MiB below one GiB (so that 0.0 GiB never appears)."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def meta_model(cls: type, options: dict[str, Any], where: str):
    """``cls(**options)`` built on torch's meta device (nothing is allocated); None when it cannot be built there.

    Bad options (negative sizes, wrong types, sizes of 0) fail here with a GonError naming ``where``.
    """
    import torch

    try:
        with torch.device("meta"):
            model = cls(**options)
    except (TypeError, ValueError, RuntimeError, OverflowError, IndexError, KeyError, ZeroDivisionError) as e:
        first = next(iter(str(e).replace("__init__() ", "").splitlines()), type(e).__name__)
        raise GonError(f"{where}: cannot build {cls.__name__}: {first[:300]}") from None
    except NotImplementedError:  # a model that cannot be built on the meta device: nothing to estimate
        return None
    for name, parameter in model.named_parameters():
        if parameter.numel() == 0:  # a size option of 0 builds an empty layer that fails only when used
            zero = [f"option {k} (--{k.replace('_', '-')}) is {v}" for k, v in options.items() if v == 0]
            raise GonError(
                f"{where}: {'; '.join(zero) or 'these options'}: sizes must be at least 1 "
                f"({cls.__name__} would get an empty layer {name} of shape {list(parameter.shape)})"
            )
    return model


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def model_bytes(cls: type, options: dict[str, Any], where: str) -> int:
    """Bytes of a model's parameters and buffers, counted on torch's meta device (nothing is allocated)."""
    model = meta_model(cls, options, where)
    return 0 if model is None else _bytes([*model.parameters(), *model.buffers()])


def check_model_fits(
    cls: type, options: dict[str, Any], where: str, training: bool = False, weights_file: Path | None = None
) -> None:
    """Refuse a model whose weights (and, when training, Adam's two moments and gradients) cannot fit, or whose
    parameters need more bytes than ``weights_file`` holds: an edited config.json must not allocate a large
    model only to find that its weights do not fit."""
    check_tree(options, where)
    options = check_options(options_of(cls), options, where, owner=cls.__name__)  # bounds first: a depth of 10**10
    model = meta_model(cls, options, where)  # would otherwise build 10**10 layer objects on the meta device
    if model is None:
        return
    weights = _bytes([*model.parameters(), *model.buffers()])
    copies = 4 if training else 1  # weights, gradients and Adam's two moments
    check_memory(weights * copies, f"{where}: {cls.__name__} ({weights / 4:.3g} parameters)", "choose smaller options")
    needed, size = _bytes(model.parameters()), weights_file.stat().st_size if weights_file else None
    if size is not None and needed > size:
        raise GonError(
            f"{weights_file} does not fit the {cls.__name__} of {where}: the model needs {needed:,} bytes of "
            f"weights, the file holds {size:,} (the config and the weights do not belong together)"
        )


#: a decoder's activations per output value, with the gradient a GON takes to encode: a generous factor
ACTIVATIONS_PER_OUTPUT = 16


def check_request(model: Any, count: int, what: str, size: tuple[int, ...] | None = None) -> None:
    """Refuse up front ``count`` outputs of ``model`` (at ``size``, default its training size) that cannot fit."""
    config = getattr(model, "config", {}) or {}
    if size is None:
        native = config.get("image_size", 32)
        size = tuple(native) if isinstance(native, (list, tuple)) else (native, native)
    values = count * config.get("channels", 3) * math.prod(size)
    check_memory(values * 4 * ACTIVATIONS_PER_OUTPUT, what, "ask for fewer or smaller outputs")
