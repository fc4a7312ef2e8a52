"""Exception types raised for invalid configs, components and inputs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem", "ConfigError", "ComponentNotFoundError", "PluginLoadError", "UnrollError"]


@dataclass(frozen=True)
class Problem:
    """One invalid thing in a config.

    ``where`` is a config path such as ``nodes[conv3].recurrent_cell.name``
    (empty for the config as a whole) and ``message`` states what is wrong and
    what to do about it.
    """

    where: str
    message: str
    missing_component: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ConfigError(ValueError):
    """A config (file, dict or component arguments) is invalid.

    ``problems`` lists every problem found; the message shows all of them,
    one per line, so a user can fix a config in one pass.
    """

    def __init__(self, problems: list[Problem] | Problem | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        head = f"invalid config {self.source}" if self.source else "invalid config"
        if len(self.problems) == 1:
            return f"{head}: {self.problems[0]}"
        lines = [f"{head}: {len(self.problems)} problems"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


class ComponentNotFoundError(ConfigError, LookupError):
    """A config names a component that no installed plugin provides."""


class PluginLoadError(ConfigError, ImportError):
    """A config names a component whose plugin failed to import."""


class UnrollError(ValueError):
    """An unroll was requested with inputs or a step count the graph cannot run."""
