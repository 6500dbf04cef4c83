"""Smoke tests: every example runs a few optimizer steps end to end and reports an accuracy."""
import importlib.util
import pathlib
import re
import sys
import pytest

pytest.importorskip("sklearn")
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, args: list[str], monkeypatch, capsys) -> tuple[float, str]:
  spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  monkeypatch.syspath_prepend(str(EXAMPLES))   # softmax_regression imports mnist_mlp
  spec.loader.exec_module(module)
  monkeypatch.setattr(sys, "argv", [f"{name}.py"] + args)
  acc = module.main()
  return acc, capsys.readouterr().out


@pytest.mark.parametrize("name", ["softmax_regression", "mnist_mlp"])
def test_example_smoke(name, monkeypatch, capsys):
  acc, out = run_example(name, ["--steps", "3", "--seed", "1"], monkeypatch, capsys)
  m = re.search(r"final test accuracy (\d+\.\d+)%", out)
  assert m, out
  assert 0.0 <= float(m.group(1)) <= 100.0 and abs(float(m.group(1)) / 100 - acc) < 1e-3
  assert re.search(r"\b3 steps, \d+\.\d kernels per step", out), out
  assert "loss nan" not in out, out
