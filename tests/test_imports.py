"""The import graph of lazygrad stays acyclic, and deferred (function-level) imports of
lazygrad modules do not creep back in. The analysis is tools/import_graph.py (run it to
see the graph: `python tools/import_graph.py`)."""
import collections
import importlib.util
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)

# The function-level imports of lazygrad modules that remain, as (importing module, imported module).
# None is in the Tensor front end. Optional heavy dependencies (torch, triton, matplotlib) are not
# lazygrad modules and are not counted. If you rename a module listed here, rename it here too;
# if you remove one of these imports, remove its line.
ALLOWED = collections.Counter()   # none: every lazygrad import is at the top of its module
FRONT_END = ("lazygrad.tensor", "lazygrad.autograd", "lazygrad.ops")   # prefixes: tensor*, autograd/*, ops/*


def test_no_import_cycles():
  graph, _ = import_graph.scan()
  assert "lazygrad.tensor" in graph and len(graph) > 20, "the scan found no modules"
  assert import_graph.cycles(graph) == []


def test_function_level_imports_do_not_grow():
  _, nested = import_graph.scan()
  found = collections.Counter((mod, target) for mod, _, target in nested)
  extra = found - ALLOWED
  assert not extra, f"new function-level imports of lazygrad modules (import at the top; a cycle means a layering problem): {sorted(extra)}"
  assert sum(found.values()) <= sum(ALLOWED.values())


def test_front_end_has_no_deferred_imports():
  _, nested = import_graph.scan()
  assert [n for n in nested if n[0].startswith(FRONT_END)] == []


def test_layering():
  """ops/ (the graph) never reaches up into the Tensor front end; the front end's theme modules and autograd never import tensor.py."""
  graph, _ = import_graph.scan()
  for mod, targets in graph.items():
    if mod.startswith("lazygrad.ops"):
      assert not {t for t in targets if t.startswith(("lazygrad.tensor", "lazygrad.autograd"))}, mod
    if mod.startswith(("lazygrad.tensor_", "lazygrad.autograd")):
      assert "lazygrad.tensor" not in targets, mod


def test_front_end_imports_standalone():
  """Each front-end module imports on its own in a fresh interpreter (no hidden order dependence)."""
  for mod in ("lazygrad.tensor_base", "lazygrad.autograd", "lazygrad.tensor_nn", "lazygrad.tensor"):
    subprocess.run([sys.executable, "-c", f"import {mod}"], check=True, cwd=ROOT)


def test_renderers_never_import_the_runtime():
  """Imports go one way: runtime (devices, executor) -> kernels (renderers) -> kernels/ir.py, and
  the scheduler -> kernels/ir.py; kernels/ and scheduler/ never import runtime/ (nor kernels/ the scheduler)."""
  graph, nested = import_graph.scan()
  edges = [(m, t) for m, ts in graph.items() for t in ts] + [(m, t) for m, _, t in nested]
  up = [(m, t) for m, t in edges if m.startswith(("lazygrad.kernels", "lazygrad.scheduler")) and t.startswith("lazygrad.runtime")]
  up += [(m, t) for m, t in edges if m.startswith("lazygrad.kernels") and t.startswith("lazygrad.scheduler")]
  assert up == []
