"""bench/step_models.py's torch and lazygrad twins compute the same training steps (so bench/step.py compares
like with like), its check notices when they do not, and bench/step.py's bookkeeping helpers (the JIT stats
reader, the RESULTS.md section rewrite) do what the bench relies on. Tiny sizes: a few seconds per device."""
import importlib.util
import pathlib
import sys
import numpy as np
import pytest

pytest.importorskip("torch")
BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"


def _load(name: str, path: pathlib.Path):
  """Import a bench script as a module without putting bench/ (matmul.py, gpu.py, ...) on sys.path."""
  if name in sys.modules: return sys.modules[name]
  spec = importlib.util.spec_from_file_location(name, path)
  module = sys.modules[name] = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


step_models = _load("step_models", BENCH / "step_models.py")   # the name bench/step.py imports it by
step_bench = _load("bench_step", BENCH / "step.py")


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_twins_agree(name, device):
  if name == "cnn" and device == "interp": pytest.skip("the bench runs on cpu; the interpreter takes ~8 s for the CNN (the MLP covers interp)")
  losses = step_models.check(name, "tiny", steps=3)
  assert len(losses) == 3
  assert len({round(a, 4) for a, _ in losses}) > 1, "the loss should move: the steps must update the model"


def test_check_notices_different_models():
  w = step_models.build("mlp", "tiny")
  lg = w.lazygrad()
  w.init["0.weight"] = w.init["0.weight"] * 1.5   # the torch twin starts elsewhere
  with pytest.raises(AssertionError, match="mlp"): step_models.compare("mlp", lg, w.torch(), steps=1)


def test_check_notices_different_optimizer():
  w = step_models.build("mlp", "tiny")
  lg, th = w.lazygrad(), w.torch()
  for g in th.opt.param_groups: g["lr"] *= 1.1   # the losses of 2 steps may stay close; the parameters do not
  with pytest.raises(AssertionError, match="mlp"): step_models.compare("mlp", lg, th, steps=2)


def test_torch_state_names_match():
  w = step_models.build("lm", "tiny")
  torch_keys = set(w.torch().model.state_dict())
  assert set(w.init) == torch_keys


def test_jit_peaks_reads_dicts_and_objects():
  class Stats:   # lazygrad.jit's field names
    def __init__(self): self.kernels, self.unplanned_bytes, self.planned_bytes, self.min_bytes = 5, 300, 100, 50
  assert step_bench.jit_peaks(Stats()) == (100, 300)
  assert step_bench.jit_peaks({"peak_planned": 1, "peak_unplanned": 2, "kernels": 9}) == (1, 2)
  assert step_bench.jit_peaks(None) == (None, None)
  assert step_bench.jit_peaks({"kernels": 3}) == (None, None)


def test_write_section_keeps_the_others(tmp_path):
  p = tmp_path / "RESULTS.md"
  p.write_text("# Benchmark results\n\n## A\n\na\n\n" + step_bench.SECTION + "\n\nold\n\n## B\n\nb\n")
  step_bench.write_section(step_bench.SECTION + "\n\nnew\n", str(p))
  text = p.read_text()
  assert "old" not in text and "new" in text and "## A\n\na" in text and "## B\n\nb" in text
  assert text.index("## A") < text.index("new") < text.index("## B")
  q = tmp_path / "other.md"
  q.write_text("# Benchmark results\n\n## A\n\na\n")
  step_bench.write_section(step_bench.SECTION + "\n\nfirst\n", str(q))
  assert q.read_text().endswith(step_bench.SECTION + "\n\nfirst\n") and "## A\n\na" in q.read_text()


def test_buffer_peak_counts_live_buffers():
  from lazygrad import Tensor
  from lazygrad.runtime.buffer import Buffer
  x = Tensor(np.ones(1000, dtype=np.float32)).realize()
  with step_bench.BufferPeak(Buffer) as bp:
    y = (x + 1).realize()
    z = (y * 2).realize()
    del y, z
  assert bp.peak == 8000 and bp.live == 0


def test_kernel_times_tally_by_name():
  import lazygrad.runtime.executor as executor
  from lazygrad import Tensor
  x = Tensor(np.ones((4, 4), dtype=np.float32)).realize()
  with step_bench.KernelTimes(executor) as kt:
    for _ in range(2):
      kt.next_step()
      ((x + 1) * 2).realize()
      x.sum().realize()
  top = kt.top(5)
  assert len(top) == 2 and all(ms >= 0 and launches == 1 for _, ms, launches in top)
  assert executor._count is kt.orig   # unwrapped again
