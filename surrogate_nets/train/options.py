"""Value checks of the command-line options (the ``check`` metadata of
:class:`~surrogate_nets.train.RunConfig` fields): each converts a text or TOML value and raises
:class:`OptionError` with the expected and the received value.
"""

from __future__ import annotations

import os
from dataclasses import field
from typing import Any, Callable, List, Optional

from .sinks import parse_sinks


def max_bits() -> int:
    """The largest bit width the quantizers accept (``MAX_BITS`` of :mod:`surrogate_nets.quant`)."""
    from .. import quant
    value = getattr(quant, "MAX_BITS", None)
    if value is None:
        from ..quant import quantizer
        value = quantizer.MAX_BITS
    return int(value)


# ------------------------------------------------------------------------------ value checks
class OptionError(ValueError):
    """A value that does not fit an option (the parser turns it into a usage error)."""


def _int(low: int, expected: str, high: Optional[Callable[[], int]] = None):
    def conv(text) -> int:
        try:
            v = int(text) if not isinstance(text, bool) else None
            if v is None or (isinstance(text, float) and v != text):
                raise ValueError
        except (TypeError, ValueError):
            raise OptionError(f"expected {expected}, got {text!r}") from None
        hi = high() if high is not None else None
        if v < low or (hi is not None and v > hi):
            raise OptionError(f"expected {expected}" + (f" (at most {hi})" if hi else "") +
                              f", got {text!r}")
        return v
    conv.__name__ = expected
    return conv


def _float(allow_zero: bool, expected: str, above: float = 0.0):
    def conv(text) -> float:
        try:
            v = float(text)
        except (TypeError, ValueError):
            raise OptionError(f"expected {expected}, got {text!r}") from None
        ok = (v >= above if allow_zero else v > above) and v < float("inf")
        if not ok:
            raise OptionError(f"expected {expected}, got {text!r}")
        return v
    conv.__name__ = expected
    return conv


def _surrogate_name(text) -> str:
    from .. import surrogate
    name = str(text)
    try:
        surrogate.registry.lookup(name)
    except (ValueError, TypeError) as e:
        raise OptionError(str(e)) from None
    return name


def classification_losses() -> List[str]:
    """The loss names the command line offers (built-ins that take class indices, plug-ins)."""
    from .. import losses
    return losses.names(task="classification")


def _loss_name(text) -> str:
    """A built-in classification loss, an import path or an installed entry point. Nothing is
    imported here (that happens in :func:`build_run`)."""
    from .. import losses
    name = str(text).strip()
    if not name:
        raise OptionError(f"expected a loss name, got {text!r}; choose one of {classification_losses()}")
    if ":" in name:
        return _absolute_loss_file(name)
    canon = losses.canonical(name)
    if canon is not None:
        if canon not in losses.CLASSIFICATION:
            raise OptionError(
                f"loss {name!r} does not train a classifier from class indices [B] on a time-major "
                f"output [T, B, C] (the command line trains classifiers); choose one of "
                f"{classification_losses()}, or a plug-in")
        return name
    if name not in losses.names(task="classification"):
        raise OptionError(f"unknown loss {name!r}; expected one of {classification_losses()}, an "
                          f"import path 'package.module:Name' or 'path/to/file.py:Name', or an "
                          f"entry point of the group 'surrogate_nets.losses'")
    return name


def _absolute_loss_file(spec: str) -> str:
    """``"rel/file.py:Name"`` -> ``"/abs/rel/file.py:Name"`` when that file exists, so that
    ``eval`` and ``--resume`` find the plug-in from any working directory; else ``spec``."""
    module, sep, attr = str(spec).rpartition(":")
    if sep and module.strip().endswith(".py") and not os.path.isabs(module.strip()) \
            and os.path.isfile(module.strip()):
        return f"{os.path.abspath(module.strip())}:{attr}"
    return spec


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    raise OptionError(f"expected true or false, got {value!r}")


def _sink_list(text) -> str:
    try:
        return ",".join(parse_sinks(text))
    except ValueError as e:
        raise OptionError(str(e)) from None


def _choices(fn: Callable[[], Any]):
    def conv(text) -> str:
        valid = list(fn())
        if str(text) not in valid:
            raise OptionError(f"invalid choice {text!r} (choose from {', '.join(valid)})")
        return str(text)
    conv.choices = fn
    return conv


def _opt(default, help: str, group: str, *, check=None, resume: str = "fixed", flag=None,
         metavar=None, action=None, const=None):
    """A field with option metadata; ``const``: the flag takes an optional value (``nargs="?"``)
    and given bare means ``const``."""
    meta = {"help": help, "group": group, "check": check, "resume": resume, "flag": flag,
            "metavar": metavar, "action": action, "const": const}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


_pos_int = _int(1, "a positive integer")
_nonneg_int = _int(0, "an integer >= 0")
_pos_float = _float(False, "a positive finite number")
_nonneg_float = _float(True, "a finite number >= 0")
_bits = _int(1, "a bit width >= 1", high=max_bits)
_tau = _float(False, "a time constant > 1 (in steps)", above=1.0)


def _open_unit(expected: str):
    """A float strictly between 0 and 1."""
    def conv(text) -> float:
        try:
            v = float(text) if not isinstance(text, bool) else None
            if v is None:
                raise ValueError
        except (TypeError, ValueError):
            raise OptionError(f"expected {expected}, got {text!r}") from None
        if not 0.0 < v < 1.0:
            raise OptionError(f"expected {expected}, got {text!r}")
        return v
    conv.__name__ = expected
    return conv


_fraction = _open_unit("a fraction in (0, 1)")
_probability = _open_unit("a probability in (0, 1)")
