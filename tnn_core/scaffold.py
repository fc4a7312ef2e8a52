"""Write a ready-to-install plugin package for a new component (``tnn new-plugin``).

The package has a ``pyproject.toml`` with the entry point, a documented
component skeleton that already passes ``tnn_core.testing``, a test that runs
the conformance kit, and a README. Only cells are supported so far.
"""

from __future__ import annotations

import keyword
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["SUPPORTED_KINDS", "ScaffoldError", "package_names", "write_plugin"]

#: Component kinds ``write_plugin`` can scaffold, as the command line spells them.
SUPPORTED_KINDS = ("cell",)

_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ScaffoldError(ValueError):
    """The requested plugin cannot be written (invalid name or kind, or the target folder exists)."""


def package_names(name: str) -> tuple[str, str]:
    """Return the distribution name (``tnn-cells-my-cell``) and import package (``tnn_cells_my_cell``) for class ``name``."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z0-9]|$)|[A-Z]?[a-z0-9]+|[A-Z]+", name)
    words = [word.lower() for word in words if word.strip("_")]
    return "tnn-cells-" + "-".join(words), "tnn_cells_" + "_".join(words)


def check_class_name(name: str) -> None:
    """Raise ``ScaffoldError`` unless ``name`` is a valid Python class name."""
    if not _CLASS_NAME.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(
            f"invalid cell name {name!r}: it becomes the Python class name, so use letters, digits and underscores, "
            f"starting with a letter, e.g. LeakyCell"
        )
    if not any(character.isalpha() for character in name):
        raise ScaffoldError(f"invalid cell name {name!r}: it needs at least one letter, e.g. LeakyCell")


def write_plugin(kind: str, name: str, directory: Path) -> Path:
    """Write a plugin package for the component class ``name`` into a new folder under ``directory``.

    The folder is named after the distribution (``tnn-cells-<name-kebab>``).

    Returns:
        The folder written.

    Raises:
        ScaffoldError: ``kind`` is not supported, ``name`` is not a valid class
            name, or the folder already exists.
    """
    if kind not in SUPPORTED_KINDS:
        raise ScaffoldError(
            f"cannot scaffold a {kind!r} plugin yet; supported kinds: {', '.join(SUPPORTED_KINDS)}. "
            f"See docs/plugins.md for writing harbor policies and memory ops by hand"
        )
    check_class_name(name)

    distribution, package = package_names(name)
    target = Path(directory) / distribution
    if target.exists():
        raise ScaffoldError(f"{target} already exists; remove it or pass another --dir")

    values = {"name": name, "distribution": distribution, "package": package}
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{package}/__init__.py": PACKAGE_INIT,
        f"{package}/cell.py": CELL_MODULE,
        "tests/test_conformance.py": CELL_TEST,
    }
    for relative, template in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(template, values), encoding="utf-8")
        logger.info("wrote %s", path)
    return target


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{{key}}`` placeholders; templates keep their own braces unchanged."""
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{{distribution}}"
version = "0.1.0"
description = "The {{name}} recurrent cell as a pytorch-tnn plugin."
readme = "README.md"
requires-python = ">=3.10"
# Raise the lower bound when the cell needs a newer pytorch-tnn feature, and the
# upper bound after testing against a new major version.
dependencies = ["pytorch-tnn>=0.1,<1"]

[project.optional-dependencies]
test = ["pytest>=8.0"]

# The entry-point name is the name configs use: {"name": "{{name}}", ...}.
[project.entry-points."tnn.cells"]
{{name}} = "{{package}}.cell:{{name}}"

[tool.setuptools.packages.find]
include = ["{{package}}*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

PACKAGE_INIT = '''\
"""The {{name}} recurrent cell for pytorch-tnn."""

from {{package}}.cell import {{name}}

__all__ = ["{{name}}"]
'''

CELL_MODULE = '''\
"""The {{name}} recurrent cell."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["{{name}}"]


class {{name}}(nn.Module):
    r"""A leaky integrator with one learnable leak per channel.

    .. math::

        s_t = x_t + \\lambda \\odot s_{t-1}, \\qquad y_t = s_t, \\qquad s_{-1} = 0

    where :math:`\\lambda` has one entry per channel. This is a starting point:
    change ``forward`` (and the docstring) to compute your cell.

    The graph passes ``input_in_channels`` because the constructor declares
    it. A constructor may also declare ``input_shape``, ``num_timesteps``,
    ``res_channels`` and ``fb_channels`` (see ``tnn_core.protocols``); every
    other argument comes from the node's config.

    Args:
        input_in_channels: channels of the input, provided by the graph.
        leak: initial value of every channel's leak. Default: ``0.5``.

    Shapes:
        Input, output and state: ``(batch, channels, height, width)`` or
        ``(batch, channels)``.
    """

    #: Constructor arguments for a small instance; ``tnn_core.testing.check_cell`` uses them.
    conformance_kwargs: dict[str, Any] = {"leak": 0.5}

    def __init__(self, input_in_channels: int, leak: float = 0.5) -> None:
        super().__init__()
        if isinstance(input_in_channels, bool) or not isinstance(input_in_channels, int) or input_in_channels < 1:
            raise ValueError(f"input_in_channels must be a positive integer, got {input_in_channels!r}")
        if isinstance(leak, bool) or not isinstance(leak, (int, float)):
            raise ValueError(f"leak must be a number, got {leak!r}")

        self.input_in_channels = input_in_channels
        self.out_channels = input_in_channels
        self.leak = nn.Parameter(torch.full((input_in_channels,), float(leak)))

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one step and return ``(output, new_state)``.

        ``state`` is ``None`` at the first step. Build the zero state from the
        input so that it has the input's dtype and device. To receive the time
        step, the feedback input or the feedforward input before the
        pre-memory op, declare ``curr_timestep``, ``fb_input`` or ``res_input``
        as keyword arguments.
        """
        if state is None:
            state = torch.zeros_like(inputs)

        leak = self.leak.view(1, -1, *([1] * (inputs.dim() - 2)))
        new_state = inputs + leak * state
        return new_state, new_state
'''

CELL_TEST = '''\
"""{{name}} against pytorch-tnn's conformance kit."""

from __future__ import annotations

from {{package}} import {{name}}
from tnn_core.testing import check_cell


def test_cell_conforms() -> None:
    check_cell({{name}})


def test_cell_conforms_on_vectors() -> None:
    check_cell({{name}}, input_shape=(6,))
'''

README = '''\
# {{distribution}}

The `{{name}}` recurrent cell as a plugin for pytorch-tnn, the temporal neural network framework.
Installing this package registers `{{name}}` in the `tnn.cells` entry-point group, so a
node's config can name it.

## Install

```bash
pip install -e .          # from this folder, into the environment that has pytorch-tnn
tnn plugins               # lists {{name}} among the cells, with this distribution
```

## Use in a config

```json
{"name": "conv2", "recurrent_cell": {"name": "{{name}}", "leak": 0.5}}
```

The graph passes `input_in_channels` itself. If another installed package also provides a
cell named `{{name}}`, write `"{{distribution}}:{{name}}"` to pick this one.

## Run the tests

```bash
pip install -e ".[test]"
python -m pytest
```

`tests/test_conformance.py` runs `tnn_core.testing.check_cell`, which checks shapes, state
threading, gradients, batch independence, float64 and device moves, determinism, the
`state_dict` round trip and a small graph that names the cell. Keep it passing as you
change the cell, and update `conformance_kwargs` in `{{package}}/cell.py` when the
constructor gets new required arguments.

## Version and publish

Version the package with semantic versioning: raise the patch version for fixes, the minor
version for new options, and the major version when a config or a saved `state_dict` stops
working (renamed options, changed parameter names or shapes). Keep the `pytorch-tnn`
range in `pyproject.toml` to the versions you tested with.

```bash
python -m pip install build twine
python -m build                     # writes dist/*.whl and dist/*.tar.gz
python -m twine check dist/*
python -m twine upload dist/*       # to PyPI; add --repository testpypi to try it first
```
'''
