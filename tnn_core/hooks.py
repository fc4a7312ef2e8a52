"""The pluggy plugin manager that runs ``tnn`` hooks (see ``tnn_core.hookspecs``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pluggy
from importlib_metadata import entry_points

from . import hookspecs

logger = logging.getLogger(__name__)

__all__ = ["hookimpl", "plugin_manager", "rewrite_config", "HOOKS_GROUP"]

hookimpl = pluggy.HookimplMarker("tnn")

#: Entry-point group whose modules (or objects) hold hook implementations.
HOOKS_GROUP = "tnn.hooks"

_manager: pluggy.PluginManager | None = None
_lock = threading.Lock()
#: Hook plugins whose import failed: name -> (distribution, error).
failed_hook_plugins: dict[str, tuple[str, BaseException]] = {}


def plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading ``tnn.hooks`` entry points on first use.

    A hook plugin that fails to import is logged and skipped; the others
    still load.
    """
    global _manager
    if _manager is not None:
        return _manager
    with _lock:
        if _manager is not None:
            return _manager
        manager = pluggy.PluginManager("tnn")
        manager.add_hookspecs(hookspecs)
        for ep in entry_points(group=HOOKS_GROUP):
            dist = ep.dist.name if ep.dist is not None else "<unknown>"
            if manager.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break the others
                failed_hook_plugins[ep.name] = (dist, exc)
                logger.warning("hook plugin %s from %s failed to import: %s", ep.name, dist, exc)
                continue
            manager.register(plugin, name=ep.name)
        _manager = manager
        return manager


def rewrite_config(config: Any, source: str) -> Any:
    """Pass ``config`` through every ``tnn_rewrite_config`` implementation in turn."""
    manager = plugin_manager()
    for impl in manager.hook.tnn_rewrite_config.get_hookimpls():
        result = impl.function(config=config, source=source)
        if result is not None:
            logger.debug("config %s rewritten by hook plugin %s", source, impl.plugin_name)
            config = result
    return config


def has_step_observers() -> bool:
    """Return whether any ``tnn_unroll_step`` implementation is registered."""
    return bool(plugin_manager().hook.tnn_unroll_step.get_hookimpls())


def call_unroll_end(graph: Any, mode: str, n_times: int) -> None:
    """Call ``tnn_unroll_end`` implementations, if any."""
    hook = plugin_manager().hook.tnn_unroll_end
    if hook.get_hookimpls():
        hook(graph=graph, mode=mode, n_times=n_times)


def call_unroll_step(**kwargs: Any) -> None:
    plugin_manager().hook.tnn_unroll_step(**kwargs)
