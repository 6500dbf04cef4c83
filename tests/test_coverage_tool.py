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
