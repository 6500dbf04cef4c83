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
ALLOWED = collections.Counter([
  # data: the loaders build Tensors lazily (could be top-level imports: there is no cycle)
  ("lazygrad.data.loader", "lazygrad.tensor"), ("lazygrad.data.loader", "lazygrad.tensor"),
  ("lazygrad.data.text", "lazygrad.tensor"), ("lazygrad.data.text", "lazygrad.tensor"),
  # Triton: imported only when a Triton device or the compile check is used (triton is optional)
  ("lazygrad.kernels.triton_compile", "lazygrad.runtime.triton_device"),
  ("lazygrad.kernels.triton_matmul", "lazygrad.backends"),
  ("lazygrad.kernels.triton_render", "lazygrad.kernels.triton_matmul"), ("lazygrad.kernels.triton_render", "lazygrad.kernels.triton_matmul"),
  ("lazygrad.runtime.triton_device", "lazygrad.runtime"), ("lazygrad.runtime.triton_device", "lazygrad.kernels.triton_render"),
  ("lazygrad.runtime.triton_device", "lazygrad.backends"), ("lazygrad.runtime.triton_device", "lazygrad.helpers"),
  ("lazygrad.runtime", "lazygrad.runtime.triton_device"),
  # renderers picked per device at run time
  ("lazygrad.runtime", "lazygrad.kernels.numpy_render"),
  ("lazygrad.realize", "lazygrad.ops"), ("lazygrad.realize", "lazygrad.kernels.numpy_render"), ("lazygrad.realize", "lazygrad.kernels.triton_render"),
  ("lazygrad.scheduler.lower", "lazygrad.kernels.numpy_lib"),
  ("lazygrad.optim.optimizer", "lazygrad.nn.module"),
  ("lazygrad.static", "lazygrad.runtime"), ("lazygrad.static", "lazygrad.autograd"),
])
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
