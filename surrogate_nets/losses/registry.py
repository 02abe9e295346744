"""Find a loss by name: built-ins, ``"module:Class"`` import paths and installed plug-ins.

Resolution order of :func:`get`:

1. a string containing ``":"`` is an import path, ``"package.module:Name"`` or
   ``"path/to/file.py:Name"`` (a dotted module is also looked up in the current directory, as
   ``python -m`` would, so ``examples.custom_loss:FocalRateLoss`` works from the repository root);
2. a built-in name (:func:`names`), ``-`` and ``_`` interchangeable, case-insensitive (the
   package's one name normalisation, :func:`surrogate_nets._registry.normalize`);
3. an entry point of the group ``surrogate_nets.losses`` of any installed distribution, e.g. in
   the plug-in's ``pyproject.toml``::

       [project.entry-points."surrogate_nets.losses"]
       focal = "my_package.losses:FocalLoss"

   after which ``surrogate-nets train --loss focal`` finds it with no change to this library.
   A built-in name wins over an entry point of the same name.

What an import path or an entry point resolves to must be a loss *module class* (an
:class:`torch.nn.Module` subclass, instantiated with the keyword arguments), a module instance,
or a loss *function* ``fn(output, target, **kw)`` (wrapped in :class:`FunctionLoss`; called only
in ``forward``). Any other callable (a factory) is refused by name: register it with
:func:`register` from your own code instead.

.. warning:: ``"file.py:Class"`` and ``"package.module:Class"`` *execute that code*, as any
   import does, and so does loading an entry point. Use them only with code you trust. The
   command line never imports a name it read from a checkpoint or a stored configuration
   unless you name it again (``--loss``) or pass ``--trust-checkpoint-code``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import os
import sys
from typing import Any, Callable, Dict, Iterable, List, Union

from torch import nn

from .._registry import Registry

from .count_mse import CountMSE
from .first_spike import FirstSpikeLoss
from .membrane_ce import MembraneCrossEntropy
from .mse_membrane import MSEMembrane
from .rate_ce import RateCrossEntropy
from .tet import TETLoss

#: Entry-point group in which installed distributions advertise losses.
ENTRY_POINT_GROUP = "surrogate_nets.losses"

#: The loss registry: built-ins, aliases and the entry-point plug-ins.
REGISTRY = Registry("loss", ENTRY_POINT_GROUP)
for _name, _factory in {
    "rate-ce": RateCrossEntropy,
    "count-ce": functools.partial(RateCrossEntropy, mode="count"),
    "count-mse": CountMSE,
    "membrane-ce": MembraneCrossEntropy,
    "tet": TETLoss,
    "first-spike": FirstSpikeLoss,
    "first-spike-mse": functools.partial(FirstSpikeLoss, mode="mse"),
    "mse-membrane": MSEMembrane,
    "ce": nn.CrossEntropyLoss,
    "mse": nn.MSELoss,
}.items():
    REGISTRY.register(_name, _factory)
for _alias, _name in {
    "ce-rate": "rate-ce",
    "ce-count": "count-ce",
    "mse-count": "count-mse",
    "max-membrane-ce": "membrane-ce",
    "ce-temporal": "first-spike",
    "temporal-ce": "first-spike",
    "mse-temporal": "first-spike-mse",
    "temporal-mse": "first-spike-mse",
    "membrane-mse": "mse-membrane",
    "cross-entropy": "ce",
}.items():
    REGISTRY.alias(_alias, _name)

#: Built-in losses that train a classifier from a time-major output ``[T, B, C]`` and class
#: indices ``[B]`` (what the command line offers). ``ce``/``mse`` are torch's losses on
#: ``[B, C]`` logits / float targets; ``mse-membrane`` regresses a trace.
CLASSIFICATION = ("rate-ce", "count-ce", "count-mse", "membrane-ce", "tet", "first-spike",
                  "first-spike-mse")


def canonical(name: str):
    """The built-in name that ``name`` (or an alias of it) stands for, else ``None``; never
    imports anything."""
    return REGISTRY.canonical(name) if isinstance(name, str) else None


def is_builtin(name) -> bool:
    """Whether ``name`` is a built-in loss name or alias (resolving it imports no code)."""
    return isinstance(name, str) and ":" not in name and REGISTRY.is_builtin(name)


class FunctionLoss(nn.Module):
    """Wrap a plain callable ``fn(output, target, **kwargs) -> Tensor`` as a loss module.

    .. math::  L = \\text{fn}(\\text{output}, \\text{target}, **\\text{kwargs})

    Shapes: those ``fn`` takes and returns.

    Reference: the plug-in protocol of this package (a loss is a module ``forward(output, target)``).
    """

    def __init__(self, fn: Callable, **kwargs) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.kwargs = dict(kwargs)

    def forward(self, output, target):
        return self.fn(output, target, **self.kwargs)

    def extra_repr(self) -> str:
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return f"fn={name}" + "".join(f", {k}={v!r}" for k, v in self.kwargs.items())


def register(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``factory`` (a loss class or a function returning a loss) under ``name``.

    Registration lasts for the process; for a plug-in that works on the command line use the
    ``surrogate_nets.losses`` entry-point group instead. Returns ``factory``.
    """
    if not callable(factory):
        raise TypeError(f"factory must be a loss class or a callable returning a loss, got "
                        f"{type(factory).__name__}")
    return REGISTRY.register(name, factory)


def unregister(name: str) -> None:
    """Remove a name added with :func:`register` (``KeyError`` if it is not registered)."""
    REGISTRY.unregister(name)


def names(include_plugins: bool = True, task: str = None) -> List[str]:
    """Built-in loss names (aliases excluded), plus installed entry-point names, sorted.
    ``task="classification"``: only the built-ins of :data:`CLASSIFICATION` (plus plug-ins)."""
    out = REGISTRY.names(include_plugins)
    if task == "classification":
        out = [n for n in out if n in CLASSIFICATION or not REGISTRY.is_builtin(n)]
    elif task is not None:
        raise ValueError(f"task must be None or 'classification', got {task!r}")
    return out


def _is_loss_function(fn: Callable) -> bool:
    """True for a plain function taking ``(output, target)``: two required positionals."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [p for p in params
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(required) >= 2


def _instantiate(obj: Any, kwargs: dict, origin: str) -> nn.Module:
    """Turn what a name resolved to into a loss module (rules documented in :func:`resolve`)."""
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ValueError(f"loss {origin} is already a module instance; keyword arguments "
                             f"{sorted(kwargs)} cannot be applied to it")
        return obj
    if not callable(obj):
        raise TypeError(f"loss {origin} resolved to {type(obj).__name__} {obj!r}, which is "
                        f"neither a loss module, a loss class nor a callable")
    if not isinstance(obj, type) and _is_loss_function(obj):
        return FunctionLoss(obj, **kwargs)
    try:
        built = obj(**kwargs)
    except TypeError as e:
        raise TypeError(f"could not build loss {origin} with keyword arguments {kwargs}: {e}") from e
    if isinstance(built, nn.Module):
        return built
    if callable(built):
        return FunctionLoss(built)
    raise TypeError(f"loss {origin}: calling {obj!r} returned {type(built).__name__}, not a "
                    f"loss module (an nn.Module with forward(output, target))")


def _instantiate_imported(obj: Any, kwargs: dict, origin: str) -> nn.Module:
    """What an import path or entry point named: a module class or instance, or a loss function
    ``fn(output, target, ...)``; never an arbitrary callable called with keyword arguments."""
    if isinstance(obj, nn.Module) or (isinstance(obj, type) and issubclass(obj, nn.Module)):
        return _instantiate(obj, kwargs, origin)
    if callable(obj) and not isinstance(obj, type) and _is_loss_function(obj):
        return FunctionLoss(obj, **kwargs)
    raise TypeError(f"loss plug-in {origin} is {type(obj).__name__} {obj!r}; a loss named by an "
                    f"import path or entry point must be a torch.nn.Module subclass (or instance) "
                    f"or a function fn(output, target, **kw). Wrap a factory in a Module class, "
                    f"or register it from your own code with surrogate_nets.losses.register")


def _import_module(module_name: str, spec: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        requested = module_name == missing or module_name.startswith(missing + ".")
        cwd = os.getcwd()
        if requested and cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
            try:
                return importlib.import_module(module_name)
            except ModuleNotFoundError:
                pass
            finally:
                if cwd in sys.path:
                    sys.path.remove(cwd)
        raise ValueError(f"loss plug-in {spec!r}: module {module_name!r} could not be imported "
                         f"(ModuleNotFoundError: {e}); is it installed or on sys.path?") from e
    except Exception as e:
        raise ValueError(f"loss plug-in {spec!r}: importing module {module_name!r} failed with "
                         f"{type(e).__name__}: {e}") from e


def _import_file(path: str, spec: str):
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise ValueError(f"loss plug-in {spec!r}: file {path!r} does not exist")
    stem = os.path.splitext(os.path.basename(full))[0]
    mod_name = f"_surrogate_nets_loss_plugin_{stem}_{abs(hash(full)) & 0xFFFFFFFF:08x}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    file_spec = importlib.util.spec_from_file_location(mod_name, full)
    if file_spec is None or file_spec.loader is None:
        raise ValueError(f"loss plug-in {spec!r}: {path!r} is not an importable Python file")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[mod_name] = module
    try:
        file_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[mod_name]
        raise ValueError(f"loss plug-in {spec!r}: executing {path!r} failed with "
                         f"{type(e).__name__}: {e}") from e
    return module


def load_path(spec: str) -> Any:
    """Import the object named by ``"package.module:Name"`` or ``"path/file.py:Name"``.

    ``Name`` may be dotted (``"mod:Outer.Inner"``). Raises ``ValueError`` naming the path when the
    module does not import or lacks the attribute.
    """
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise ValueError(f"loss import path must look like 'package.module:Name' or "
                         f"'path/to/file.py:Name', got {spec!r}")
    module_name, attr = module_name.strip(), attr.strip()
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        module = _import_file(module_name, spec)
    else:
        module = _import_module(module_name, spec)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n, v in vars(module).items()
                            if not n.startswith("_") and callable(v)
                            and getattr(v, "__module__", None) == module.__name__)
            raise ValueError(f"loss plug-in {spec!r}: module {module_name!r} has no attribute "
                             f"{attr!r}; it defines {public}")
        obj = getattr(obj, part)
    return obj


def get(name: str, **kwargs) -> nn.Module:
    """Build a loss from a name: built-in, import path or entry point (see the module doc).

    Args:
        name: e.g. ``"rate-ce"``, ``"tet"``, ``"my_pkg.losses:Focal"``,
            ``"examples/custom_loss.py:FocalRateLoss"`` or an installed entry-point name.
        **kwargs: passed to the loss's constructor (``reduction="sum"``, ``lam=1e-2``, ...).

    Returns:
        an :class:`torch.nn.Module` whose ``forward(output, target)`` returns the loss.

    Raises:
        ValueError: unknown name (the message lists the known names), or an import path that
            does not import.
        TypeError: ``name`` is not a str, or the keyword arguments do not fit the loss.
    """
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a str, got {type(name).__name__} {name!r}")
    if not name.strip():
        raise ValueError(f"loss name must be non-empty, got {name!r}; expected one of {names()}")
    if ":" in name:
        return _instantiate_imported(load_path(name), kwargs, repr(name))
    factory = REGISTRY.builtin(name)
    if factory is not None:
        return _instantiate(factory, kwargs, repr(name))
    ep = REGISTRY.find_entry_point(name)
    if ep is not None:
        obj = REGISTRY.load_entry_point(ep)
        return _instantiate_imported(obj, kwargs, f"{name!r} (entry point {ep.value!r})")
    raise ValueError(REGISTRY.unknown_message(
        name, "an import path 'package.module:Name' or 'path/to/file.py:Name'"))


def resolve(name_or_module: Union[str, nn.Module, Callable], **kwargs) -> nn.Module:
    """A loss module from a name, a module, a loss class or a callable.

    Rules (the same for what a name or an entry point resolves to):

    * ``str``: looked up by :func:`get`;
    * an :class:`torch.nn.Module` instance: returned as is (no keyword arguments allowed);
    * a class: instantiated with ``**kwargs``; an instance that is not a module but is callable
      (e.g. a plain loss class with ``__call__``) is wrapped in :class:`FunctionLoss`;
    * a function with two required positional parameters ``(output, target)``: the loss itself,
      wrapped in :class:`FunctionLoss` with ``kwargs`` bound;
    * any other callable: a factory, called with ``**kwargs``; it must return a loss.
    """
    if isinstance(name_or_module, str):
        return get(name_or_module, **kwargs)
    return _instantiate(name_or_module, kwargs, repr(name_or_module))


def _parse_value(text: str):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def _split_top_level(text: str) -> List[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse_kwargs(items: Union[str, Iterable[str], None]) -> Dict[str, Any]:
    """Parse command-line keyword arguments ``["k=v", "k2=v2"]`` or ``"k=v,k2=v2"`` into a dict.

    Values are Python literals (``0.5``, ``[1.0, 2.0]``, ``'max'``); ``true``/``false``/``none``
    in any case are accepted too; anything else is kept as a string (``reduce=max`` gives
    ``"max"``). Commas inside brackets do not split (``weight=[1,2,3]``). This is what
    ``--loss-kw`` of the command line goes through.
    """
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    out: Dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"loss keyword arguments must be 'key=value' strings, got "
                            f"{type(item).__name__} {item!r}")
        for piece in _split_top_level(item):
            key, sep, value = piece.partition("=")
            key = key.strip()
            if not sep or not key.isidentifier():
                raise ValueError(f"loss keyword argument must look like 'key=value', got {piece!r}")
            out[key] = _parse_value(value)
    return out
