"""No import cycle among the project's modules (issue 17).

import-linter's layers contract keeps imports between the packages pointing down; this keeps
the modules inside each package from importing each other in a circle, under
``TYPE_CHECKING`` too (a cycle for the type checker is still two modules that cannot be read
apart). Two modules that need each other meet through a narrow Protocol instead, as
``ambient_ctrl.builder.ControllerHost`` (what a builder needs of the manager) and
``reconcilers.metrics.UpstreamSeries`` do.

The graph is grimp's, import-linter's own: it reads the source, importing nothing.
"""

from __future__ import annotations

import grimp

PACKAGES = ("foundation", "metrics", "informers", "ambient_ctrl", "reconcilers", "envtest")

KNOWN: set[frozenset[str]] = set()
"""Cycles tolerated for now (none): an entry fails the test once its cycle is gone."""


def cycles(graph: grimp.ImportGraph) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (or a module importing
    itself), by Tarjan's algorithm, iteratively."""
    imports = {module: sorted(graph.find_modules_directly_imported_by(module))
               for module in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(imports[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(imports[child])))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == module:
                        break
                if len(component) > 1 or module in imports[module]:
                    found.append(frozenset(component))
    return found


def test_no_import_cycle_among_the_projects_modules() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    found = set(cycles(graph))
    assert found - KNOWN == set(), "import cycles: " + "; ".join(
        " <-> ".join(sorted(cycle)) for cycle in found - KNOWN)
    assert KNOWN - found == set(), "gone, take them off KNOWN: " + "; ".join(
        " <-> ".join(sorted(cycle)) for cycle in KNOWN - found)


def test_the_builder_does_not_import_the_manager() -> None:
    graph = grimp.build_graph("ambient_ctrl", cache_dir=None)
    assert "ambient_ctrl.manager" not in graph.find_modules_directly_imported_by(
        "ambient_ctrl.builder")
    assert "ambient_ctrl.builder" in graph.find_modules_directly_imported_by(
        "ambient_ctrl.manager")


def test_cycles_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c", "d"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
