"""pytorch-tnn core: temporal graphs, unroll schedules, registries and config loading.

Import what most code needs from here::

    from tnn_core import TemporalGraph, MakeMovie
"""

from __future__ import annotations

from .errors import ComponentNotFoundError, ConfigError, PluginLoadError, Problem, UnrollError
from .hooks import hookimpl, plugin_manager
from .movie import MakeMovie
from .node import RecurrentModule, RecurrentModuleRGC
from .registry import get_component, list_components, register, unregister
from .temporal_graph import TemporalGraph, UnrollResult

__all__ = [
    "TemporalGraph",
    "UnrollResult",
    "MakeMovie",
    "RecurrentModule",
    "RecurrentModuleRGC",
    "register",
    "unregister",
    "get_component",
    "list_components",
    "hookimpl",
    "plugin_manager",
    "ConfigError",
    "ComponentNotFoundError",
    "PluginLoadError",
    "Problem",
    "UnrollError",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("pytorch-tnn")
except Exception:  # running from a source tree that is not installed
    __version__ = "0+unknown"
