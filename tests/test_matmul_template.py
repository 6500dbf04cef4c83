"""The Triton matmul template (lazygrad/kernels/triton/matmul.py).

Contractions with fused prologues (casts, slices, transposes, pads, two-view reshapes,
computed operands) and epilogues (bias, activations, an SGD update stored in W's layout)
agree with torch on every test device, values and gradients. Every contracting kernel of
these graphs renders as tl.dot; the fp16/bf16 (and opt-in tf32) templates compile to
tensor-core PTX for Hopper; the cuda autotuner's choice and caching logic runs against a
fake kernel and timer (no GPU here).

bf16 cases keep the arithmetic in fp32 around the bf16 matmul: Triton 3.9's interpreter
adds and multiplies bf16 tensors as their raw uint16 bits (a bug outside the template)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import compile_for_hopper, helper_test_op, hopper_job

import lazygrad
from lazygrad import GlobalCounters, Tensor, no_grad, schedule
from lazygrad.kernels.triton import LaunchConfig, TritonProgram, render_triton
from lazygrad.kernels.triton import matmul as triton_matmul
from lazygrad.kernels.triton.matmul import matmul_program, template_ok
from lazygrad.ops.view import ShapeTracker, View
from lazygrad.runtime import triton_device

GRAD_TOL = {"grad_rtol": 1e-3, "grad_atol": 1e-3}


# ---------------------------------------------------------------- values and gradients vs torch

@pytest.mark.parametrize("act", ["relu", "gelu", "none"])
def test_linear_bias_activation(act):
  tact = {"relu": torch.relu, "gelu": F.gelu, "none": lambda y: y}[act]
  lact = {"relu": Tensor.relu, "gelu": Tensor.gelu, "none": lambda y: y}[act]
  helper_test_op([(24, 40), (36, 40), (36,)], lambda x, w, b: tact(F.linear(x, w, b)), lambda x, w, b: lact(x.linear(w, b)), **GRAD_TOL)


def test_odd_shapes():
  helper_test_op([(33, 65), (65, 47)], lambda a, b: a @ b, **GRAD_TOL)


def test_bmm():
  helper_test_op([(2, 3, 17, 19), (2, 3, 19, 23)], lambda a, b: a @ b, **GRAD_TOL)


def test_broadcast_batch():
  # a batch dim only one operand moves along is an m (or n) dim: two m dims and two n dims
  helper_test_op([(2, 1, 17, 19), (1, 3, 19, 23)], lambda a, b: a @ b, **GRAD_TOL)


def test_sliced_and_transposed_operands():
  helper_test_op([(20, 60), (18, 30)], lambda x, w: x[:, ::2] @ w.T, **GRAD_TOL)


def test_reshape_of_a_transpose():
  # the permute + reshape cannot be one view: the operand loads through two views
  helper_test_op([(6, 8, 5), (48, 7)], lambda x, w: x.permute(2, 0, 1).reshape(5, 48) @ w, **GRAD_TOL)


def test_padded_and_computed_operands():
  # a masked view reads 0 past its mask; exp(x) * 0.5 + 1 is not 0 past the k edge of a tile
  helper_test_op([(20, 30), (34, 18)], lambda x, w: F.pad(x, (2, 2)) @ w, lambda x, w: x.pad((2, 2)) @ w, **GRAD_TOL)
  helper_test_op([(20, 30), (30, 18)], lambda x, w: (x.exp() * 0.5 + 1) @ w, **GRAD_TOL)


def test_half():
  helper_test_op([(24, 40), (36, 40), (36,)], lambda x, w, b: F.linear(x, w, b).relu(), lambda x, w, b: x.linear(w, b).relu(),
                 dtype="float16", grad_rtol=5e-2, grad_atol=1e-1)


def test_bfloat16():
  helper_test_op([(24, 40), (36, 40), (36,)], lambda x, w, b: ((x.bfloat16() @ w.bfloat16().T).float() + b).relu(),
                 rtol=5e-2, atol=5e-2, grad_rtol=5e-2, grad_atol=1e-1)


def _mlp(T, arrays, requires_grad):
  x, w1, b1, w2 = [T(a) for a in arrays[:1]] + [T(a, requires_grad=requires_grad) for a in arrays[1:]]
  return x, (w1, b1, w2)


def test_sgd_weight_update_with_the_loss():
  """dW reductions fuse their `w - lr * dW` epilogue (stored in W's layout for the first layer)."""
  rng = np.random.default_rng(0)
  arrays = [rng.standard_normal(s).astype(np.float32) * sc for s, sc in (((16, 24), 1), ((20, 24), .3), ((20,), 1), ((20, 5), .3))]
  y = np.arange(16) % 5
  x, ps = _mlp(Tensor, arrays, True)
  loss = x.linear(ps[0], ps[1]).relu().matmul(ps[2]).cross_entropy(Tensor(y))
  loss.backward()
  with no_grad():
    for p in ps: p.assign(p - 0.1 * p.grad)
  Tensor.realize(loss, *ps)
  tx, tps = _mlp(torch.tensor, arrays, True)
  tloss = F.cross_entropy(torch.relu(F.linear(tx, tps[0], tps[1])) @ tps[2], torch.tensor(y))
  tloss.backward()
  np.testing.assert_allclose(loss.numpy(), tloss.item(), rtol=1e-5)
  for p, tp in zip(ps, tps): np.testing.assert_allclose(p.numpy(), (tp - 0.1 * tp.grad).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_linear_relu_forward_is_one_kernel():
  x, w, b = Tensor.randn(64, 80).realize(), Tensor.randn(96, 80).realize(), Tensor.randn(96).realize()
  GlobalCounters.reset()
  out = (x @ w.T + b).relu().realize()
  assert GlobalCounters.kernel_count == 1
  ref = torch.relu(torch.tensor(x.numpy()) @ torch.tensor(w.numpy()).T + torch.tensor(b.numpy()))
  np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)


def test_int64_indexing(device, monkeypatch):
  """The int64 index path (taken when some offset can pass 2**31), forced on a small problem."""
  monkeypatch.setattr(triton_matmul, "needs_int64", lambda k: True)
  helper_test_op([(29, 37), (37, 31), (31,)], lambda a, b, c: a @ b + c, **GRAD_TOL)


def test_batch_past_the_grid_limit(device, monkeypatch):
  """Past 65535 batch entries the batch index folds into program_id(0) (forced here at 2)."""
  monkeypatch.setattr(triton_matmul, "MAX_GRID_Y", 2)
  helper_test_op([(3, 13, 21), (3, 21, 11)], lambda a, b: a @ b, **GRAD_TOL)


# ---------------------------------------------------------------- structure (rendering only)

def _training_graphs():
  """Forward + backward (+ an SGD step) of the graphs above, as lists of tensors to schedule."""
  def fwd_bwd(fn, *shapes, step=False):
    ins = [Tensor.randn(*s).realize().requires_grad_() for s in shapes]
    out = fn(*ins)
    (out * Tensor.randn(*out.shape).realize().cast(out.dtype)).sum().backward()   # not .sum(): a constant gradient is no matmul
    if step:
      with no_grad():
        for p in ins: p.assign(p - 0.1 * p.grad)
      return [out, *ins]
    return [out] + [t.grad for t in ins]
  return [
    fwd_bwd(lambda x, w, b: x.linear(w, b).relu(), (24, 40), (36, 40), (36,), step=True),
    fwd_bwd(lambda x, w, b: x.linear(w, b).gelu(), (24, 40), (36, 40), (36,)),
    fwd_bwd(lambda a, b: a @ b, (2, 3, 17, 19), (2, 3, 19, 23)),
    fwd_bwd(lambda a, b: a @ b, (2, 1, 17, 19), (1, 3, 19, 23)),
    fwd_bwd(lambda x, w: x[:, ::2] @ w.T, (20, 60), (18, 30)),
    fwd_bwd(lambda x, w: x.permute(2, 0, 1).reshape(5, 48) @ w, (6, 8, 5), (48, 7)),
    fwd_bwd(lambda x, w: x.half().linear(w.half()).relu(), (24, 40), (36, 40)),
  ]


def test_every_contraction_renders_as_dot(device):
  if device != "interp": pytest.skip("rendering only: once, in the interp run")
  n = 0
  for ts in _training_graphs():
    for it in schedule(*ts):
      if it.kernel.contraction is None: continue
      assert template_ok(it.kernel), it.kernel.name
      assert "tl.dot(" in render_triton(it.kernel), it.kernel.name
      n += 1
  assert n >= 20


def test_needs_int64_only_past_int32(device):
  if device != "interp": pytest.skip("rendering only: once, in the interp run")
  k = schedule(Tensor.randn(16, 32).realize() @ Tensor.randn(32, 16).realize())[0].kernel
  assert not triton_matmul.needs_int64(k) and "tl.int64" not in render_triton(k)
  big = copy.copy(k)
  big.out_st = ShapeTracker((View(k.out_shape, (2 ** 27, 0, 1)),))   # an output row pitch of 2**27 elements
  assert triton_matmul.needs_int64(big) and "rm = (pid_m * BM + tl.arange(0, BM)).to(tl.int64)" in render_triton(big)


def test_tf32_flag_changes_the_program(device):
  if device != "interp": pytest.skip("rendering only: once, in the interp run")
  x, w = Tensor.randn(16, 32).realize(), Tensor.randn(32, 16).realize()
  k = schedule(x @ w)[0].kernel
  dev = triton_device_of("interp")
  ieee = matmul_program(k, interp=False)
  compiled_ieee = dev.compile(k)
  try:
    lazygrad.backends.cuda.matmul.allow_tf32 = True
    tf32 = matmul_program(k, interp=False)
    # the flag is part of the compile cache key: a new program, not the cached ieee one
    # (compared by identity: the cache is LRU-bounded, so its size says nothing)
    compiled_tf32 = dev.compile(k)
    assert compiled_tf32 is not compiled_ieee and compiled_tf32.program.name.endswith("_tf32")
  finally:
    lazygrad.backends.cuda.matmul.allow_tf32 = False
  assert 'input_precision="ieee"' in ieee.source and 'input_precision="tf32"' in tf32.source
  assert tf32.name != ieee.name


def triton_device_of(name):
  from lazygrad.runtime import get_device
  return get_device(name)


def test_template_compiles_to_tensor_cores_for_hopper(device):
  if device != "interp": pytest.skip("compiled once, from the interp run")
  x, w, b = Tensor.randn(256, 128).realize(), Tensor.randn(192, 128).realize(), Tensor.randn(192).realize()
  graphs = {"fp16": x.half().linear(w.half(), b.half()).relu(), "bf16": (x.bfloat16() @ w.bfloat16().T).float() + b,
            "tf32": x.linear(w, b).relu()}
  jobs = []
  try:
    for tag, out in graphs.items():
      lazygrad.backends.cuda.matmul.allow_tf32 = tag == "tf32"
      (k,) = [it.kernel for it in schedule(out) if it.kernel.contraction is not None]
      jobs.append(hopper_job(k))
  finally:
    lazygrad.backends.cuda.matmul.allow_tf32 = False
  _assert_tensor_cores(list(graphs), jobs)


def _assert_tensor_cores(tags: list[str], jobs: list[dict]) -> None:
  """Compile the jobs for sm_90 in a process without TRITON_INTERPRET; each PTX must use
  tensor cores (wgmma on Hopper, or mma.sync)."""
  results = compile_for_hopper(jobs)
  for tag, res in zip(tags, results):
    assert {"wgmma", "mma.sync"} & set(res["ptx_has"]), (tag, res["ptx_has"])


def test_backward_compiles_to_tensor_cores_for_hopper(device):
  """A half-precision Linear's whole training step: dX, and dW fused with the SGD update
  stored in W's layout, keep tensor-core dots (fp16 and bf16) once compiled for sm_90."""
  if device != "interp": pytest.skip("compiled once, from the interp run")
  jobs, tags = [], []
  for dt in ("half", "bfloat16"):
    x = getattr(Tensor.randn(128, 64), dt)().realize()
    w = getattr(Tensor.randn(96, 64), dt)().realize().requires_grad_()
    b = getattr(Tensor.randn(96), dt)().realize().requires_grad_()
    x.requires_grad_()
    out = x.linear(w, b).relu()
    (out * getattr(Tensor.randn(128, 96), dt)().realize()).sum().backward()
    with no_grad():
      for p in (w, b): p.assign(p - 0.1 * p.grad)
    kernels = [it.kernel for it in schedule(out, x.grad, w, b) if it.kernel.contraction is not None]
    names = {k.name.split("_")[0] + ("_update" if "update" in k.name else "") for k in kernels}
    assert names >= {"mm", "mm_update"}, names
    for k in kernels:
      assert template_ok(k), k.name
      jobs.append(hopper_job(k))
      tags.append(f"{dt}:{k.name}")
  _assert_tensor_cores(tags, jobs)


# ---------------------------------------------------------------- autotuning (fake kernel, fake timer)

def _configs(n):
  return tuple(LaunchConfig({"BM": 16 * (i + 1)}, (1,)) for i in range(n))


def test_choose_config_times_once_and_remembers(device, tmp_path):
  if device != "cpu": pytest.skip("device-independent: once")
  configs, timed = _configs(3), []
  def bench(cfg):
    timed.append(cfg)
    if cfg is configs[0]: raise RuntimeError("out of shared memory")   # a failing config is never chosen
    return {32: 2.0, 48: 1.0}[cfg.constexprs["BM"]]
  cache = triton_device.TuneCache(str(tmp_path / "tune.json"))
  assert triton_device.choose_config(configs, "k", cache, bench) is configs[2]
  assert len(timed) == 3
  assert triton_device.choose_config(configs, "k", cache, bench) is configs[2] and len(timed) == 3   # in memory
  again = triton_device.TuneCache(str(tmp_path / "tune.json"))   # a new process: from disk
  assert triton_device.choose_config(configs, "k", again, bench) is configs[2] and len(timed) == 3
  assert triton_device.choose_config(configs[:2], "k", again, bench) is configs[1]   # a stale index is re-timed
  assert json.loads((tmp_path / "tune.json").read_text()) == {"k": 1}


def test_cuda_launcher_tunes_on_scratch_buffers(device, tmp_path, monkeypatch):
  """First launch: time each config on clones (an in-place update must land once), then run
  the fastest on the real buffers; later launches reuse the choice."""
  if device != "cpu": pytest.skip("device-independent: once")
  import triton.testing
  runs = []
  class FakeKernel:
    def __getitem__(self, grid):
      def run(*bufs, BM, num_warps, num_stages):
        runs.append(BM)
        bufs[0].add_(1)   # writes its output in place, like an ASSIGN
      return run
  monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
  monkeypatch.setattr(triton.testing, "do_bench", lambda fn, **kw: (fn(), {16: 3.0, 32: 1.0, 48: 2.0}[runs[-1]])[1])
  monkeypatch.setattr(triton_device, "_tune_cache", [triton_device.TuneCache(str(tmp_path / "tune.json"))])
  dev = triton_device.TritonDevice.__new__(triton_device.TritonDevice)
  dev.name = "cuda"
  prog = TritonProgram("mm", "src", {}, _configs(3))
  launch = dev._launcher(prog, FakeKernel())
  out = torch.zeros(4)
  launch([out, out], [])   # the output is also an input
  assert runs == [16, 32, 48, 32] and out.tolist() == [1.0] * 4
  assert launch.program is prog and launch.config.constexprs["BM"] == 32   # DEBUG=2 shows the chosen config
  launch([out, out], [])
  assert runs[-1] == 32 and len(runs) == 5 and out.tolist() == [2.0] * 4
  (key,) = json.loads((tmp_path / "tune.json").read_text())
  assert key.startswith("mm/") and key.endswith("/Fake GPU") and "(4,):float32" in key


def test_scratch_buffers_clone_what_aliases_the_output(device):
  if device != "cpu": pytest.skip("device-independent: once")
  out, other = torch.zeros(8), torch.ones(8)
  scratch = triton_device.scratch_buffers([out, out[2:], other])
  assert scratch[0].data_ptr() != out.data_ptr() and scratch[1].data_ptr() != out.data_ptr() + 8
  assert scratch[2] is other
