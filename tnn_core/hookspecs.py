"""Hook specifications for pytorch-tnn plugins (pluggy project name ``tnn``).

Implement a hook by decorating a function with ``tnn_core.hookimpl`` and
either listing its module in the ``tnn.hooks`` entry-point group of your
package (``my_plugin = "my_package.hooks"``) or registering an object in
process with ``tnn_core.hooks.plugin_manager().register(obj)``.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("tnn")

__all__ = ["hookspec", "tnn_rewrite_config", "tnn_unroll_step", "tnn_unroll_end"]


@hookspec
def tnn_rewrite_config(config: dict[str, Any], source: str) -> dict[str, Any] | None:
    """Rewrite a loaded config before it is validated.

    Called once per load, for every implementation in registration order;
    each one receives the result of the previous one. Return a new config (a
    dict in pytorch-tnn's format) to replace it, or ``None`` to leave it as
    it is. This is how a plugin adds another config dialect: recognise its
    own format (a marker key, say) and translate it.

    :param config: the config as loaded (a private copy; changing it in place
        is allowed but returning a new dict is clearer).
    :param source: the file path, or ``"<dict>"``.
    """


@hookspec
def tnn_unroll_step(graph: Any, node: str, timestep: int, output: Any, state: Any) -> None:
    """Observe one node's output right after it ran at one time step.

    Called for every node at every time step of every unroll (biological and
    full), in the order the schedule runs the nodes. Use it to record
    activations or attach probes. Return values are ignored. Implementations
    must not modify ``output`` in place. When no implementation is
    registered the unroll skips the call entirely.

    :param graph: the ``TemporalGraph`` being unrolled.
    :param node: node name.
    :param timestep: time step, from 0.
    :param output: the node's output tensor, ``(batch, channels, height, width)``
        or ``(batch, features)``.
    :param state: the cell's new state (``None`` for stateless cells).
    """


@hookspec
def tnn_unroll_end(graph: Any, mode: str, n_times: int) -> None:
    """Called once after an unroll finished, with the schedule name (``"biological"`` or ``"full"``)."""
