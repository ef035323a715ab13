"""hetplan's modules import one way: no import cycle, counting imports inside functions and
under TYPE_CHECKING (they are dependencies all the same). A package's `__init__` importing
its own submodules (its public face) is not a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "hetplan"


def module_names(root: Path = PKG) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        rel = p.relative_to(root.parent).with_suffix("")
        out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = p
    return out


def import_graph(root: Path = PKG) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file (a `from a.b import
    c` counts a.b.c when that is a module, else a.b)."""
    mods = module_names(root)
    pkg = root.name
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        base = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    mod = ".".join(base[:len(base) - node.level + 1] + ([mod] if mod else []))
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and (t == pkg or t.startswith(pkg + ".")):
                    edges[m].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), ignoring
    a package's edges to its own submodules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def succ(v: str) -> list[str]:
        return sorted(w for w in edges[v] if not w.startswith(v + "."))

    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(succ(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(succ(w))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_cycles():
    """The checker itself: a two-module loop, a three-module loop through a function-local
    import, and a package face that is not a loop."""
    g = {"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.d"}, "p.d": {"p.e"},
         "p.e": {"p.c"}, "p.f": {"p"}}
    assert sorted(cycles(g)) == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]
    assert cycles({"p": {"p.a"}, "p.a": set()}) == []


def test_function_local_imports_are_edges(tmp_path):
    pkg = tmp_path / "pk"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from pk.high import g\n    return g\n")
    (pkg / "high.py").write_text("from pk import low\n")
    edges = import_graph(pkg)
    assert edges["pk.low"] == {"pk.high"} and edges["pk.high"] == {"pk", "pk.low"}
    assert cycles(edges) == [["pk.high", "pk.low"]]


def test_hetplan_has_no_import_cycle():
    edges = import_graph()
    assert len(edges) > 50 and sum(map(len, edges.values())) > 100   # the walk saw the code
    assert cycles(edges) == []


def test_lower_stages_do_not_import_the_planner():
    """The planner's callers sit above it: placement, the MILP, the simulator's engine and
    the plots never import it (the repair loop and re-plan drive it from above)."""
    lower = ("placement", "milp", "candidates", "scenario", "plan", "plots",
             "simulate.metrics", "simulate.engine")
    edges = import_graph()
    for m, deps in edges.items():
        if any(m == f"hetplan.{x}" or m.startswith(f"hetplan.{x}.") for x in lower):
            assert "hetplan.planner" not in deps, m
