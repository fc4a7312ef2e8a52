"""Component registry: lazy listing, in-process registration, name conflicts and broken plugins."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import tnn_core
from tnn_cells.cells.identity import IdentityCell
from tnn_core import ComponentNotFoundError, ConfigError, PluginLoadError, TemporalGraph
from tnn_core.cli.main import main
from tnn_core.registry import ComponentEntry, registry
from tnn_core.spec import validate_config


@pytest.fixture
def isolated_registry() -> Iterator[dict[str, dict[str, list[ComponentEntry]]]]:
    """Yield the registry's entries by kind and restore them (names, entries and load state) afterwards."""
    entries = registry._discover()
    saved = {kind: {name: list(candidates) for name, candidates in by_name.items()} for kind, by_name in entries.items()}
    saved_state = {
        id(entry): (entry.obj, entry.error, entry.loaded)
        for by_name in entries.values()
        for candidates in by_name.values()
        for entry in candidates
    }
    try:
        yield entries
    finally:
        for kind, by_name in entries.items():
            by_name.clear()
            by_name.update(saved[kind])
            for candidates in by_name.values():
                for entry in candidates:
                    entry.obj, entry.error, entry.loaded = saved_state[id(entry)]


def single_node_config(cell: str) -> dict[str, Any]:
    return {
        "nodes": [{"name": "only", "shape_from": None, "recurrent_cell": {"name": cell}}],
        "edges": [],
        "input_nodes": ["only"],
        "output_node": "only",
        "input_shape": [2, 4, 4],
    }


class MarkedCell(IdentityCell):
    """An identity cell under its own class, so tests can see which registration a config picked."""


class OtherMarkedCell(IdentityCell):
    """A second identity cell class for name-conflict tests."""


def fake_entry(name: str, distribution: str, obj: Any) -> ComponentEntry:
    return ComponentEntry("cell", name, distribution, "1.2.3", obj=obj, loaded=True)


def broken_entry() -> ComponentEntry:
    entry_point = importlib.metadata.EntryPoint(name="Broken", value="nonexistent_module_xyz:Cell", group="tnn.cells")
    return ComponentEntry("cell", "Broken", "tnn-broken-plugin", "0.0.7", entry_point=entry_point)


# -- listing ---------------------------------------------------------------------------


def test_listing_imports_nothing():
    code = (
        "import sys\n"
        "from tnn_core import list_components\n"
        "names = [e.name for e in list_components()]\n"
        "assert 'GRUCell' in names, names\n"
        "assert 'Conv2dCell' in names, names\n"
        "print(sorted(m for m in sys.modules if m.startswith(('tnn_cells', 'tnn_harbors'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"listing imported component modules: {result.stdout}"


def test_list_components_filters():
    names = [entry.name for entry in tnn_core.list_components("cell", "*RNN*")]
    assert "UGRNNCell" in names
    assert "VanillaRNNCell" in names
    assert "GRUCell" not in names


def test_list_components_distribution():
    entry = next(e for e in tnn_core.list_components("cell") if e.name == "GRUCell")
    assert entry.distribution == "pytorch-tnn"
    assert entry.version == importlib.metadata.version("pytorch-tnn")


# -- in-process registration -----------------------------------------------------------


def test_register_call_form(isolated_registry):
    tnn_core.register("cell", "MarkedCell", MarkedCell)
    graph = TemporalGraph(single_node_config("MarkedCell"))
    assert type(graph.nodes["only"].recurrent_cell) is MarkedCell

    tnn_core.unregister("cell", "MarkedCell")
    with pytest.raises(ComponentNotFoundError):
        TemporalGraph(single_node_config("MarkedCell"))


def test_register_decorator_form(isolated_registry):
    @tnn_core.register("cell")
    class DecoratedCell(IdentityCell):
        pass

    assert "DecoratedCell" in registry.names("cell")
    graph = TemporalGraph(single_node_config("DecoratedCell"))
    assert type(graph.nodes["only"].recurrent_cell) is DecoratedCell

    tnn_core.unregister("cell", "DecoratedCell")
    assert "DecoratedCell" not in registry.names("cell")


def test_register_twice_needs_override(isolated_registry):
    tnn_core.register("cell", "MarkedCell", MarkedCell)
    with pytest.raises(ValueError, match="override=True"):
        tnn_core.register("cell", "MarkedCell", OtherMarkedCell)
    assert tnn_core.get_component("cell", "MarkedCell") is MarkedCell, "a rejected registration replaced the first"

    tnn_core.register("cell", "MarkedCell", OtherMarkedCell, override=True)
    assert tnn_core.get_component("cell", "MarkedCell") is OtherMarkedCell


def test_register_shadows_installed(isolated_registry):
    tnn_core.register("cell", "IdentityCell", MarkedCell)
    assert tnn_core.get_component("cell", "IdentityCell") is MarkedCell

    tnn_core.unregister("cell", "IdentityCell")
    assert tnn_core.get_component("cell", "IdentityCell") is IdentityCell, "unregister removed the installed cell"


def test_register_unknown_kind(isolated_registry):
    with pytest.raises(ValueError, match="unknown component kind 'cells'"):
        tnn_core.register("cells", "MarkedCell", MarkedCell)


# -- name conflicts between distributions -------------------------------------------------


def test_conflict_names_both(isolated_registry):
    isolated_registry["cell"]["DupCell"] = [fake_entry("DupCell", "dist-a", MarkedCell), fake_entry("DupCell", "dist-b", OtherMarkedCell)]
    with pytest.raises(ConfigError) as info:
        validate_config(single_node_config("DupCell"))
    message = str(info.value)
    assert '"dist-a:DupCell"' in message, message
    assert '"dist-b:DupCell"' in message, message
    assert info.value.problems[0].where == "nodes[only].recurrent_cell.name"


def test_qualified_name_picks_one(isolated_registry):
    isolated_registry["cell"]["DupCell"] = [fake_entry("DupCell", "dist-a", MarkedCell), fake_entry("DupCell", "dist-b", OtherMarkedCell)]
    assert tnn_core.get_component("cell", "dist-a:DupCell") is MarkedCell
    assert tnn_core.get_component("cell", "dist-b:DupCell") is OtherMarkedCell

    graph = TemporalGraph(single_node_config("dist-b:DupCell"))
    assert type(graph.nodes["only"].recurrent_cell) is OtherMarkedCell


def test_qualified_name_wrong_distribution(isolated_registry):
    isolated_registry["cell"]["DupCell"] = [fake_entry("DupCell", "dist-a", MarkedCell)]
    with pytest.raises(ComponentNotFoundError) as info:
        tnn_core.get_component("cell", "dist-c:DupCell")
    assert "dist-a" in str(info.value), str(info.value)


def test_conflict_shown_by_plugins(isolated_registry, capsys):
    isolated_registry["cell"]["DupCell"] = [fake_entry("DupCell", "dist-a", MarkedCell), fake_entry("DupCell", "dist-b", OtherMarkedCell)]
    assert main(["plugins", "--kind", "cell"]) == 0
    out = capsys.readouterr().out
    assert 'write "dist-a:DupCell" to pick this one' in out, out
    assert 'write "dist-b:DupCell" to pick this one' in out, out


# -- plugins that fail to import -----------------------------------------------------------


def test_broken_plugin_listed_with_error(isolated_registry, capsys):
    isolated_registry["cell"]["Broken"] = [broken_entry()]
    assert main(["plugins", "--load", "--kind", "cell"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "Broken" in line]
    assert len(lines) == 1, lines
    assert "tnn-broken-plugin 0.0.7" in lines[0], lines[0]
    assert "failed" in lines[0], lines[0]
    assert "nonexistent_module_xyz" in lines[0], lines[0]


def test_broken_plugin_spares_others(isolated_registry):
    isolated_registry["cell"]["Broken"] = [broken_entry()]
    with pytest.raises(PluginLoadError):
        tnn_core.get_component("cell", "Broken")
    graph = TemporalGraph(single_node_config("IdentityCell"))
    assert type(graph.nodes["only"].recurrent_cell) is IdentityCell


def test_broken_plugin_error_chained(isolated_registry):
    isolated_registry["cell"]["Broken"] = [broken_entry()]
    for attempt in range(2):  # the second lookup re-raises the recorded import error
        with pytest.raises(PluginLoadError) as info:
            tnn_core.get_component("cell", "Broken")
        assert isinstance(info.value.__cause__, ModuleNotFoundError), f"attempt {attempt}: {info.value.__cause__!r}"
        assert "tnn-broken-plugin 0.0.7" in str(info.value), str(info.value)
        assert "nonexistent_module_xyz" in str(info.value), str(info.value)


def test_broken_plugin_in_config(isolated_registry):
    isolated_registry["cell"]["Broken"] = [broken_entry()]
    with pytest.raises(ConfigError) as info:
        validate_config(single_node_config("Broken"))
    problem = info.value.problems[0]
    assert problem.where == "nodes[only].recurrent_cell.name"
    assert "failed to import" in problem.message, problem.message
