"""A small name registry shared by the surrogate families and the losses (private helper).

One name normalisation for the whole package, :func:`normalize`: case-insensitive, surrounding
white space ignored, ``-`` and ``_`` interchangeable (``"Fast-Sigmoid"`` finds ``fast_sigmoid``,
``"rate_ce"`` finds ``rate-ce``). Names are *shown* as registered.

A :class:`Registry` holds built-ins (``register``), aliases, and reads the entry points of an
installed distribution's ``pyproject.toml``::

    [project.entry-points."surrogate_nets.losses"]        # or "surrogate_nets.surrogates"
    focal = "my_package.losses:FocalLoss"

Loading an entry point imports that package's module, i.e. runs its code, like any import; the
registry does so only when asked for that very name.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple


def normalize(name: str) -> str:
    """The lookup key of a name: ``name.strip().lower()`` with ``-`` read as ``_``."""
    return name.strip().lower().replace("-", "_")


class Registry:
    """Built-in names -> objects, aliases, and an entry-point group for installed plug-ins.

    Args:
        kind: what is registered (``"loss"``, ``"surrogate"``), used in messages.
        group: the entry-point group of plug-ins (``None``: no plug-ins).
    """

    def __init__(self, kind: str, group: Optional[str] = None):
        self.kind = kind
        self.group = group
        self._items: Dict[str, Tuple[str, Any]] = {}   # key -> (display name, object)
        self._aliases: Dict[str, str] = {}             # key -> key of the target

    # ------------------------------------------------------------------ built-ins
    def register(self, name: str, obj: Any, *, aliases: Iterable[str] = ()) -> Any:
        """Register ``obj`` under ``name`` (replacing an earlier entry of that name)."""
        if not isinstance(name, str) or not name.strip() or ":" in name:
            raise ValueError(f"{self.kind} name must be a non-empty str without ':', got {name!r}")
        key = normalize(name)
        self._items[key] = (name.strip(), obj)
        for a in aliases:
            self._aliases[normalize(a)] = key
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` and the aliases pointing to it (``KeyError`` if absent)."""
        key = normalize(name)
        if key not in self._items:
            raise KeyError(f"no {self.kind} registered as {name!r}")
        del self._items[key]
        for a in [a for a, k in self._aliases.items() if k == key]:
            del self._aliases[a]

    def alias(self, alias: str, name: str) -> None:
        """Make ``alias`` another name of the registered ``name``."""
        self._aliases[normalize(alias)] = normalize(name)

    def names(self, include_plugins: bool = True) -> List[str]:
        """Registered names (aliases excluded) and, optionally, installed plug-in names, sorted."""
        out = {display for display, _ in self._items.values()}
        if include_plugins:
            have = {normalize(n) for n in out}
            out.update(ep.name for ep in self.entry_points() if normalize(ep.name) not in have)
        return sorted(out)

    def aliases(self) -> List[str]:
        """The alias keys, sorted."""
        return sorted(self._aliases)

    def canonical(self, name: str) -> Optional[str]:
        """The display name of a built-in (or alias of one), else ``None``."""
        key = normalize(name)
        key = self._aliases.get(key, key)
        item = self._items.get(key)
        return item[0] if item else None

    def builtin(self, name: str) -> Optional[Any]:
        """The object registered under ``name`` (or an alias), else ``None``; imports nothing."""
        key = normalize(name)
        key = self._aliases.get(key, key)
        item = self._items.get(key)
        return item[1] if item else None

    def is_builtin(self, name: str) -> bool:
        return isinstance(name, str) and self.builtin(name) is not None

    # ------------------------------------------------------------------ plug-ins
    def entry_points(self) -> list:
        """The installed entry points of :attr:`group` (empty when there is none)."""
        if self.group is None:
            return []
        try:
            return list(importlib.metadata.entry_points(group=self.group))
        except Exception:  # a broken installed distribution must not break the built-ins
            return []

    def find_entry_point(self, name: str):
        key = normalize(name)
        for ep in self.entry_points():
            if normalize(ep.name) == key:
                return ep
        return None

    def load_entry_point(self, ep) -> Any:
        """``ep.load()`` with a ``ValueError`` naming the plug-in and its distribution."""
        try:
            return ep.load()
        except Exception as e:
            dist = getattr(getattr(ep, "dist", None), "name", "?")
            raise ValueError(f"{self.kind} plug-in {ep.name!r} (entry point {ep.value!r} of "
                             f"distribution {dist!r}) failed to load: {type(e).__name__}: {e}") from e

    def lookup(self, name: str, check: Optional[Callable[[Any, str], Any]] = None) -> Any:
        """The object of a built-in name or alias, else of an installed entry point; a
        ``ValueError`` listing the names when neither exists. ``check(obj, origin)`` may
        validate (and return) what an entry point loaded."""
        obj = self.builtin(name)
        if obj is not None:
            return obj
        ep = self.find_entry_point(name)
        if ep is not None:
            obj = self.load_entry_point(ep)
            return check(obj, f"{name!r} (entry point {ep.value!r})") if check else obj
        raise ValueError(self.unknown_message(name))

    def unknown_message(self, name: str, extra: str = "") -> str:
        msg = f"unknown {self.kind} {name!r}; expected one of {self.names()}"
        if self._aliases:
            msg += f" (aliases: {self.aliases()})"
        if extra:
            msg += f", {extra}"
        if self.group:
            msg += f", or an entry point of the group {self.group!r}"
        return msg
