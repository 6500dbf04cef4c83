"""The import graph of the lazygrad package, from its source (nothing is imported).

  python tools/import_graph.py          # counts, cycles, and the function-level imports

- module-level edges: `import`/`from ... import` statements executed when a module is
  imported (at the top, or under a module-level if/try; `if TYPE_CHECKING:` blocks are
  skipped). `from lazygrad.a import b` is an edge to lazygrad.a.b when that is a module,
  else to lazygrad.a. The implicit import of a parent package is not an edge.
- function-level imports: lazygrad imports inside a def (what the cycle used to force).
tests/test_imports.py checks both."""
from __future__ import annotations
import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = "lazygrad"


def modules(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
  out = {}
  for path in sorted((root / PKG).rglob("*.py")):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    out[".".join(parts)] = path
  return out


def _is_type_checking(test: ast.expr) -> bool:
  return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node, mod: str, is_pkg: bool, mods) -> list[str]:
  """The lazygrad modules one import statement names."""
  if isinstance(node, ast.Import): names = [a.name for a in node.names]
  else:
    base = node.module or ""
    if node.level:   # relative import
      pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
      pkg = pkg[:len(pkg) - node.level + 1]
      base = ".".join(pkg + ([base] if base else []))
    names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
  return sorted({n for n in names if n == PKG or n.startswith(PKG + ".")})


def _walk(body, in_def: bool, mod, is_pkg, mods, top: list, nested: list):
  for node in body:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      for t in _targets(node, mod, is_pkg, mods): (nested if in_def else top).append((t, node.lineno))
    elif isinstance(node, ast.If) and not in_def and _is_type_checking(node.test):
      _walk(node.orelse, in_def, mod, is_pkg, mods, top, nested)
    else:
      inner = in_def or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
      for field in ("body", "orelse", "finalbody", "handlers"):
        sub = getattr(node, field, None)
        if isinstance(sub, list): _walk(sub, inner, mod, is_pkg, mods, top, nested)


def scan(root: pathlib.Path = ROOT):
  """(graph: module -> set of modules imported at module level, nested: [(module, line, target)])."""
  mods = modules(root)
  graph, nested = {}, []
  for mod, path in mods.items():
    top, inner = [], []
    _walk(ast.parse(path.read_text(), str(path)).body, False, mod, path.name == "__init__.py", mods, top, inner)
    graph[mod] = {t for t, _ in top if t != mod}
    nested += [(mod, line, t) for t, line in inner]
  return graph, nested


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan), each sorted."""
  index, low, stack, on, out = {}, {}, [], set(), []
  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v); on.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in graph: continue
      if w not in index:
        visit(w); low[v] = min(low[v], low[w])
      elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop(); on.discard(w); comp.append(w)
        if w == v: break
      if len(comp) > 1: out.append(sorted(comp))
  sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
  for v in sorted(graph):
    if v not in index: visit(v)
  return sorted(out)


def main():
  graph, nested = scan()
  cyc = cycles(graph)
  print(f"{len(graph)} modules, {sum(len(v) for v in graph.values())} module-level edges")
  print(f"{len(nested)} function-level imports of lazygrad modules:")
  for mod, line, t in nested: print(f"  {mod}:{line} -> {t}")
  print(f"{len(cyc)} import cycles among module-level imports (strongly connected components):")
  for c in cyc: print("  " + " <-> ".join(c))
  full = {m: set(v) for m, v in graph.items()}
  for mod, _, t in nested:
    if t != mod: full[mod].add(t)
  cyc_all = cycles(full)
  print(f"{len(cyc_all)} cycles once function-level imports count as edges too (dependencies the deferred imports hide):")
  for c in cyc_all: print("  " + " <-> ".join(c))
  sizes = sorted(((len(p.read_text().splitlines()), m) for m, p in modules().items()), reverse=True)[:8]
  print("largest modules: " + ", ".join(f"{m} {n}" for n, m in sizes))


if __name__ == "__main__": main()
