"""Load graph configs from JSON or YAML files or dicts.

The loader returns a deep copy, so the caller's dict is never modified and
one dict can build any number of graphs. Plugins may rewrite a loaded config
before validation through the ``tnn_rewrite_config`` hook (how another config
dialect is added).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Problem

logger = logging.getLogger(__name__)

__all__ = ["load_config", "ConfigSource"]

ConfigSource = str | Path | Mapping[str, Any]


def _read_file(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(Problem("", f"config file {str(path)!r} not found"))
    if path.is_dir():
        raise ConfigError(Problem("", f"{str(path)!r} is a folder; pass a .json or .yaml config file"))
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(Problem("", f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(Problem("", f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}")) from exc


def load_config(source: ConfigSource, *, apply_hooks: bool = True) -> tuple[dict[str, Any], str]:
    """Return ``(config, label)``: a private deep copy of the config and a label for messages.

    ``source`` is a path to a ``.json``, ``.yaml`` or ``.yml`` file, or a
    mapping. Files with another suffix are read as YAML (a superset of JSON).
    """
    if isinstance(source, Mapping):
        config = copy.deepcopy(dict(source))
        label = "<dict>"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        config = _read_file(path)
        label = str(path)
    else:
        raise ConfigError(Problem("", f"expected a config file path or a dict, got {type(source).__name__}"))

    if apply_hooks:
        from .hooks import rewrite_config

        config = rewrite_config(config, label)

    if not isinstance(config, Mapping):
        raise ConfigError(Problem("", f"the config must be a mapping with 'nodes' and 'edges', got {type(config).__name__}"), source=label)
    return dict(config), label
