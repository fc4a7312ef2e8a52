"""Component registries backed by entry points.

Every kind of component (recurrent cells, harbor policies, memory ops, unroll
schedules, EAD parts) has one entry-point group. The entry-point name is the
string a config writes. Listing reads package metadata only. A component is
imported the first time it is looked up, and a plugin that fails to import
affects only the names it provides.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from importlib_metadata import EntryPoint, entry_points

from .errors import ComponentNotFoundError, ConfigError, PluginLoadError, Problem

logger = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "ComponentEntry",
    "Registry",
    "registry",
    "register",
    "unregister",
    "get_component",
    "list_components",
]

#: Component kind -> entry-point group.
KINDS: dict[str, str] = {
    "cell": "tnn.cells",
    "harbor": "tnn.harbors",
    "memory_op": "tnn.memory_ops",
    "schedule": "tnn.schedules",
    "encoder": "tnn.ead.encoders",
    "attender": "tnn.ead.attenders",
    "decoder": "tnn.ead.decoders",
}

#: Words used in messages for each kind.
KIND_LABELS: dict[str, str] = {
    "cell": "recurrent cell",
    "harbor": "harbor policy",
    "memory_op": "memory op",
    "schedule": "unroll schedule",
    "encoder": "EAD encoder",
    "attender": "EAD attender",
    "decoder": "EAD decoder",
}

#: Plural forms of ``KIND_LABELS`` for listings.
KIND_PLURALS: dict[str, str] = {kind: ("harbor policies" if kind == "harbor" else f"{label}s") for kind, label in KIND_LABELS.items()}

IN_PROCESS = "<in-process>"


@dataclass
class ComponentEntry:
    """One registered component: where it comes from and, once loaded, its object."""

    kind: str
    name: str
    distribution: str
    version: str
    entry_point: EntryPoint | None = None
    obj: Any = None
    error: BaseException | None = None
    loaded: bool = False

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}:{self.name}"

    @property
    def target(self) -> str:
        """The ``module:attribute`` path the entry point names, or the object's qualified name."""
        if self.entry_point is not None:
            return self.entry_point.value
        return f"{getattr(self.obj, '__module__', '?')}:{getattr(self.obj, '__qualname__', repr(self.obj))}"

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        return "loaded" if self.loaded else "not loaded"

    def load(self) -> Any:
        """Import the component (once) and return it; failures are recorded and re-raised."""
        if self.loaded:
            return self.obj
        if self.error is not None:
            raise self.error
        try:
            self.obj = self.entry_point.load()
        except Exception as exc:  # any import-time failure of a third-party plugin
            self.error = exc
            logger.warning("plugin %s (%s %s) failed to import: %s", self.qualified_name, self.distribution, self.version, exc)
            raise
        self.loaded = True
        logger.debug("loaded %s %r from %s %s (%s)", self.kind, self.name, self.distribution, self.version, self.target)
        return self.obj


@dataclass
class Registry:
    """All components of every kind, discovered from entry points plus in-process registrations."""

    _entries: dict[str, dict[str, list[ComponentEntry]]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _discover(self) -> dict[str, dict[str, list[ComponentEntry]]]:
        if self._entries is not None:
            return self._entries
        with self._lock:
            if self._entries is not None:
                return self._entries
            found: dict[str, dict[str, list[ComponentEntry]]] = {kind: {} for kind in KINDS}
            for kind, group in KINDS.items():
                seen: set[tuple[str, str, str]] = set()
                for ep in entry_points(group=group):
                    dist_name = ep.dist.name if ep.dist is not None else "<unknown>"
                    version = ep.dist.version if ep.dist is not None else "?"
                    key = (dist_name, ep.name, ep.value)
                    if key in seen:  # the same distribution found twice on sys.path
                        continue
                    seen.add(key)
                    entry = ComponentEntry(kind, ep.name, dist_name, version, entry_point=ep)
                    found[kind].setdefault(ep.name, []).append(entry)
            self._entries = found
            return found

    def refresh(self) -> None:
        """Forget discovered entry points (keeps in-process registrations); call after installing a plugin."""
        with self._lock:
            old = self._entries
            self._entries = None
        if old is None:
            return
        entries = self._discover()
        for kind, by_name in old.items():
            for name, candidates in by_name.items():
                for entry in candidates:
                    if entry.distribution == IN_PROCESS:
                        entries[kind].setdefault(name, []).append(entry)

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KINDS)}")

    def entries(self, kind: str | None = None) -> Iterator[ComponentEntry]:
        """Yield every entry of ``kind`` (all kinds when ``None``) without importing anything."""
        kinds = [kind] if kind is not None else list(KINDS)
        for k in kinds:
            self._check_kind(k)
            for name in sorted(self._discover()[k]):
                yield from self._discover()[k][name]

    def names(self, kind: str) -> list[str]:
        """Return the sorted names registered for ``kind``."""
        self._check_kind(kind)
        return sorted(self._discover()[kind])

    def register(self, kind: str, name: str, obj: Any, *, override: bool = False) -> Any:
        """Register ``obj`` under ``name`` in this process (notebooks, tests).

        An in-process registration takes precedence over installed plugins of
        the same name. Registering a name twice in-process needs ``override``.
        """
        self._check_kind(kind)
        by_name = self._discover()[kind]
        existing = [e for e in by_name.get(name, []) if e.distribution == IN_PROCESS]
        if existing and not override:
            raise ValueError(
                f"{KIND_LABELS[kind]} {name!r} is already registered in this process "
                f"({existing[0].target}); pass override=True to replace it"
            )
        kept = [e for e in by_name.get(name, []) if e.distribution != IN_PROCESS]
        entry = ComponentEntry(kind, name, IN_PROCESS, "", obj=obj, loaded=True)
        by_name[name] = [entry, *kept]
        return obj

    def unregister(self, kind: str, name: str) -> None:
        """Remove an in-process registration; installed plugins are untouched."""
        self._check_kind(kind)
        by_name = self._discover()[kind]
        kept = [e for e in by_name.get(name, []) if e.distribution != IN_PROCESS]
        if kept:
            by_name[name] = kept
        else:
            by_name.pop(name, None)

    def resolve(self, kind: str, name: str, where: str = "") -> ComponentEntry:
        """Return the entry for ``name`` (``"dist:Name"`` picks one distribution) or raise a ``ConfigError``."""
        self._check_kind(kind)
        label = KIND_LABELS[kind]
        by_name = self._discover()[kind]
        if not isinstance(name, str) or not name:
            raise ConfigError(Problem(where, f"expected the name of a {label} (a string), got {name!r}"))

        dist_wanted = None
        plain = name
        if ":" in name:
            dist_wanted, plain = name.split(":", 1)

        candidates = by_name.get(plain, [])
        if dist_wanted is not None:
            candidates = [e for e in candidates if _same_dist(e.distribution, dist_wanted)]
        in_process = [e for e in candidates if e.distribution == IN_PROCESS]
        if in_process:
            return in_process[0]
        if not candidates:
            raise ComponentNotFoundError(Problem(where, self._not_found_message(kind, name, plain, dist_wanted), missing_component=name))
        if len(candidates) > 1:
            providers = ", ".join(f"{e.distribution} {e.version} ({e.target})" for e in candidates)
            choices = " or ".join(f'"{e.qualified_name}"' for e in candidates)
            raise ConfigError(
                Problem(where, f"{label} {plain!r} is provided by several installed distributions: {providers}; "
                        f"write {choices} to pick one, or uninstall one of them")
            )
        return candidates[0]

    def get(self, kind: str, name: str, where: str = "") -> Any:
        """Return the component object for ``name``, importing its plugin on first use."""
        entry = self.resolve(kind, name, where)
        try:
            return entry.load()
        except Exception as exc:
            raise PluginLoadError(
                Problem(where, f"{KIND_LABELS[kind]} {name!r} is provided by {entry.distribution} {entry.version} "
                        f"({entry.target}) but failed to import: {type(exc).__name__}: {exc}")
            ) from exc

    def _not_found_message(self, kind: str, name: str, plain: str, dist_wanted: str | None) -> str:
        label = KIND_LABELS[kind]
        available = self.names(kind)
        if dist_wanted is not None and plain in available:
            providers = ", ".join(e.distribution for e in self._discover()[kind][plain])
            return f"{label} {plain!r} is not provided by {dist_wanted!r}; it is provided by: {providers}"
        parts = [f"unknown {label} {name!r}."]
        close = difflib.get_close_matches(plain, available, n=3, cutoff=0.6)
        close += [n for n in available if n.lower() == plain.lower() and n not in close]
        if close:
            parts.append(f"Did you mean {' or '.join(repr(c) for c in close)}?")
        parts.append(f"Available {KIND_PLURALS[kind]}: {', '.join(available) if available else '(none installed)'}.")
        if kind == "cell":
            parts.append("More cells come from plugin packages such as tnn-cells-rgc (pytorch-tnn's plugins_example/tnn-cells-rgc): "
                         "pip install the package that provides the cell, then check `tnn plugins`.")
        else:
            parts.append("Plugin packages add more; run `tnn plugins` to see what is installed.")
        return " ".join(parts)


def _same_dist(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return s.lower().replace("_", "-").replace(".", "-")

    return norm(a) == norm(b)


registry = Registry()


def register(kind: str, name: str | None = None, obj: Any = None, *, override: bool = False) -> Any:
    """Register a component in this process, as a call or a class decorator.

    ``register("cell", "MyCell", MyCell)`` or::

        @register("cell")
        class MyCell(nn.Module): ...
    """
    if obj is not None:
        return registry.register(kind, name or obj.__name__, obj, override=override)

    def decorator(target: Any) -> Any:
        registry.register(kind, name or target.__name__, target, override=override)
        return target

    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove an in-process registration."""
    registry.unregister(kind, name)


def get_component(kind: str, name: str, where: str = "") -> Any:
    """Return the component ``name`` of ``kind`` (see ``Registry.get``)."""
    return registry.get(kind, name, where)


def list_components(kind: str | None = None, pattern: str = "*") -> list[ComponentEntry]:
    """List registered components, optionally filtered by an fnmatch ``pattern`` on the name."""
    import fnmatch

    return [e for e in registry.entries(kind) if fnmatch.fnmatchcase(e.name.lower(), pattern.lower())]
