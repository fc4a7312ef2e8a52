"""Build components from config specs ``{"name": <registered name>, **kwargs}``.

Keyword arguments are checked against the component's constructor signature
before it is called: unknown keys get a did-you-mean, missing required keys
and values of the wrong type are reported with their config path. The
framework also provides some arguments itself (``in_channels``,
``input_shape``, ``num_timesteps``, ...). They are passed only to components
whose constructor declares them. A config value that contradicts the
inferred one is an error instead of being overwritten.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from .errors import ConfigError, Problem
from .registry import KIND_LABELS, registry

logger = logging.getLogger(__name__)

__all__ = ["build_component", "check_component_spec", "accepted_arguments", "spec_name", "INFERRED"]

_EMPTY = inspect.Parameter.empty


class _Inferred:
    """Marks a provided argument whose value is only known once the graph is built."""

    def __repr__(self) -> str:
        return "<inferred>"


#: Value for ``provided`` arguments during validation, before shapes are known.
INFERRED = _Inferred()


def spec_name(spec: Any) -> str | None:
    """Return the ``name`` of a component spec, or ``None`` when it has none."""
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        return spec["name"]
    return None


def _signature(obj: Any) -> inspect.Signature:
    target = obj.__init__ if isinstance(obj, type) else obj
    signature = inspect.signature(target)
    params = list(signature.parameters.values())
    if isinstance(obj, type) and params and params[0].name == "self":
        params = params[1:]
    return signature.replace(parameters=params)


def accepted_arguments(obj: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """Return the keyword parameters of ``obj``'s constructor and whether it takes ``**kwargs``."""
    params = {}
    var_keyword = False
    for p in _signature(obj).parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            params[p.name] = p
    return params, var_keyword


def _type_hints(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if isinstance(obj, type) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: skip type checks for this component
        return {}


def _matches(value: Any, hint: Any) -> bool:
    """Return whether ``value`` fits the type hint ``hint`` (a lenient, JSON-oriented check)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return len(args) != 1 or all(_matches(v, args[0]) for v in value) if origin is not tuple else True
    if origin in (dict, Mapping, typing.Mapping) or hint in (dict, Mapping):
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe_hint(hint: Any) -> str:
    text = str(hint) if typing.get_args(hint) else (getattr(hint, "__name__", None) or str(hint))
    for prefix in ("typing.", "collections.abc.", "<class '"):
        text = text.replace(prefix, "")
    return text.replace("'>", "").replace("NoneType", "None")


def check_component_spec(
    kind: str,
    spec: Any,
    where: str,
    provided: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Return every problem with ``spec`` as a component of ``kind``, without building it.

    ``provided`` contains the arguments the framework will pass (inferred
    channels, shapes, ...), which count as present. A spec whose component
    cannot be found or imported returns that one problem.
    """
    provided = dict(provided or {})
    label = KIND_LABELS[kind]
    if not isinstance(spec, Mapping):
        return [Problem(where, f"expected a {label} spec such as {{\"name\": ...}}, got {spec!r}")]
    if "name" not in spec:
        return [Problem(f"{where}.name", f"missing: every {label} spec needs a 'name' key with a registered {label} name")]
    try:
        cls = registry.get(kind, spec["name"], f"{where}.name")
    except ConfigError as exc:
        return list(exc.problems)

    params, var_keyword = accepted_arguments(cls)
    hints = _type_hints(cls)
    problems = []
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    suggested: set[str] = set()
    for key, value in kwargs.items():
        if key not in params and not var_keyword:
            close = difflib.get_close_matches(key, list(params), n=2, cutoff=0.6)
            suggested.update(close)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            valid = ", ".join(p for p in params if p not in provided) or "(none)"
            problems.append(Problem(f"{where}.{key}", f"{spec['name']} does not accept {key!r}.{hint} Valid keys: {valid}"))
            continue
        if key in provided and key in params and provided[key] is not INFERRED and value != provided[key] and not _equivalent(value, provided[key]):
            problems.append(
                Problem(f"{where}.{key}", f"config sets {key}={value!r} but the graph gives {provided[key]!r} here; "
                        f"remove the key or make it match")
            )
            continue
        hint_type = hints.get(key)
        if hint_type is not None and not _matches(value, hint_type):
            problems.append(
                Problem(f"{where}.{key}", f"expected {_describe_hint(hint_type)} for {spec['name']}.{key}, got {value!r}")
            )
    for name, p in params.items():
        if p.default is _EMPTY and name not in kwargs and name not in provided and name not in suggested:
            problems.append(Problem(f"{where}.{name}", f"missing: {spec['name']} needs {name!r}"))
    return problems


def _equivalent(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return False


def build_component(kind: str, spec: Any, where: str, provided: Mapping[str, Any] | None = None) -> nn.Module:
    """Build the component that ``spec`` names, passing it the ``provided`` arguments it declares.

    ``spec`` is never modified. Raises ``ConfigError`` naming ``where`` for
    every invalid argument, and wraps ``ValueError``/``TypeError`` raised by
    the constructor the same way.
    """
    provided = dict(provided or {})
    problems = check_component_spec(kind, spec, where, provided)
    if problems:
        raise ConfigError(problems)

    cls = registry.get(kind, spec["name"], f"{where}.name")
    params, var_keyword = accepted_arguments(cls)
    kwargs = {k: _copy_value(v) for k, v in spec.items() if k != "name"}
    for key, value in provided.items():
        if key in params:
            kwargs[key] = value
    try:
        module = cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError([Problem(_join(where, p.where), p.message) for p in exc.problems]) from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(Problem(where, f"{spec['name']}: {exc}")) from exc
    return module


def _join(outer: str, inner: str) -> str:
    if not inner:
        return outer
    return inner if inner.startswith(outer) else f"{outer}.{inner}"


def _copy_value(value: Any) -> Any:
    """Deep-copy plain config values so components cannot change the user's config."""
    if isinstance(value, Mapping):
        return {k: _copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_value(v) for v in value]
    return value
