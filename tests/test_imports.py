"""The library is a pyramid: no module of kd/ or experiments/ imports one that imports it back (at the top or
inside a function), and kd/ never imports a finding."""
import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def import_graph() -> dict[str, set[str]]:
    files = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
             for folder in ("kd", "experiments") for p in (REPO / folder).glob("*.py")}
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {d for d in found & set(files) if d not in (name, "kd", "experiments")}
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None
    assert len(order) == len(graph) > 40
    assert not [(m, d) for m, ds in graph.items() if m.startswith("kd") for d in ds if d.startswith("experiments")]
