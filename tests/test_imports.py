"""No import cycles between nngraph's modules: every import counts, at the top of a module or
inside a function (a function-level import only hides a cycle until it runs); imports under
`if TYPE_CHECKING:` (annotations) do not."""
import ast
import os

import networkx as nx

ROOT = os.path.join(os.path.dirname(__file__), "..")
PACKAGES = {"nngraph": "nngraph", "nngraph.kernels": "kernels"}


def modules() -> dict:
    """{dotted module name: file} of nngraph and its kernels (pyproject maps kernels/ to
    nngraph.kernels)."""
    out = {}
    for package, folder in PACKAGES.items():
        top = os.path.join(ROOT, folder)
        for path, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__" and
                       not (package == "nngraph" and path == top and d == "kernels")]
            for name in files:
                if name.endswith(".py"):
                    parts = os.path.relpath(os.path.join(path, name), top)[:-3].split(os.sep)
                    parts = parts[:-1] if parts[-1] == "__init__" else parts
                    out[".".join([package] + parts)] = os.path.join(path, name)
    return out


def import_graph() -> nx.DiGraph:
    mods = modules()
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
        annotations_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                            and "TYPE_CHECKING" in ast.unparse(node.test)
                            for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in annotations_only:
                continue
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]
                                ) if node.level else node.module
                base = base.rstrip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    g.add_edge(name, target)
    return g


def test_no_module_imports_itself_through_others():
    g = import_graph()
    assert len(g) > 60
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    shown = [" -> ".join(c + [c[0]]) for scc in cycles
             for c in list(nx.simple_cycles(g.subgraph(scc)))[:3]]
    assert not cycles, "import cycles:\n" + "\n".join(shown)
