"""tools/coverage.py (the torch API coverage report) and the names it counts: everything lazygrad.nn.functional and the
parity modules export is spelled as torch spells it. Host-only: checked on the cpu run."""
import importlib.util
import inspect
import os
import pathlib
import types
import pytest
import torch
import lazygrad
import lazygrad.nn as ln
import lazygrad.nn.functional as LF

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _cpu_only(device):
  if os.environ.get("LAZYGRAD_DEVICE", "cpu") != "cpu": pytest.skip("host-only checks, run on the cpu pass")


def _tool():
  spec = importlib.util.spec_from_file_location("lazygrad_coverage_tool", ROOT / "tools" / "coverage.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_functional_and_nn_names_are_torch_names():
  assert set(LF.__all__) <= set(dir(torch.nn.functional)), set(LF.__all__) - set(dir(torch.nn.functional))
  classes = [n for n in ln.__all__ if inspect.isclass(getattr(ln, n))]
  assert set(classes) <= set(dir(torch.nn)), set(classes) - set(dir(torch.nn))
  assert set(lazygrad.functions.__all__) <= set(dir(torch)), set(lazygrad.functions.__all__) - set(dir(torch))


def test_classify_rules():
  tool = _tool()
  ns = types.SimpleNamespace(relu=1, add=1)
  covered, skipped, missing = tool.classify(["relu", "relu_", "add_", "to_sparse", "view_as_complex", "frobnicate", "mul_"], ns)
  assert covered == ["relu"] and missing == ["frobnicate", "mul_"]
  flat = {n: r for r, ns_ in skipped.items() for n in ns_}
  assert flat["relu_"].startswith("in-place") and flat["add_"].startswith("in-place")
  assert "sparse" in flat["to_sparse"] and "complex" in flat["view_as_complex"]


def test_report_counts_add_up():
  text, rows = _tool().report()
  assert text.startswith("# torch API coverage") and "| `torch.nn.functional` |" in text
  for _, total, covered, skipped, missing in rows: assert covered + skipped + missing == total
  f_row = next(r for r in rows if r[0] == "torch.nn.functional")
  assert f_row[2] >= 100   # what this branch added: 0 before


def _params(fn):
  try: return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
  except (ValueError, TypeError): return None   # a torch builtin without a Python signature


def test_functional_signatures_match_torch():
  """Every F function whose torch counterpart has a Python signature takes the same parameter names and defaults."""
  checked = 0
  for name in LF.__all__:
    theirs = _params(getattr(torch.nn.functional, name))
    if theirs is None or theirs[0][0] == "args": continue   # a C builtin or a *args dispatcher (max_pool2d's boolean_dispatch)
    assert _params(getattr(LF, name)) == theirs, name
    checked += 1
  assert checked > 60


def test_new_module_signatures_match_torch():
  """The modules this parity work added take torch's constructor arguments (names and defaults)."""
  # torch passes a function as the default activation where lazygrad passes its name; the RNNs take *args in torch
  exempt = {"TransformerDecoderLayer", "Transformer", "GRU", "RNN", "BatchNorm3d"}
  mods = [ln.loss, ln.conv, ln.activation, ln.spatial, ln.normalization, ln.recurrent, ln.transformer]
  for m in mods:
    for name in m.__all__:
      if name in exempt: continue
      theirs = _params(getattr(torch.nn, name).__init__)
      if theirs is None or [p for p, _ in theirs[1:]] == ["args", "kwargs"]: continue
      assert _params(getattr(ln, name).__init__) == theirs, name
