"""Convolution as implicit GEMM on the matmul template (tensor_nn._conv_windows, _conv_vjp).

The windows of a conv's input are one view (ops/view.py merges them: strides (stride, dilation)
per spatial dim, one more view under it for padding), so the forward is one contraction kernel
with M = (N, *out), N = C_out/groups, K = (C_in/groups, *k) and groups a batch dim; the weight
gradient is one contraction over (N, *out) and the input gradient a transposed convolution on the
same template. Values and gradients agree with torch on every test device; no kernel of a conv's
schedule stores more than its inputs and outputs (no taps, no column buffer); the kernels compile
to tensor-core PTX for sm_90."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import compile_for_hopper, helper_test_op, hopper_job

import lazygrad
from lazygrad import Tensor, schedule
from lazygrad.kernels.triton import triton_program
from lazygrad.kernels.triton.matmul import template_ok

TOL = {"rtol": 1e-4, "atol": 1e-4, "grad_rtol": 1e-3, "grad_atol": 1e-3}

CASES = [   # (input, weight, kwargs): small shapes, few programs on interp
  ((2, 4, 7, 7), (6, 4, 3, 3), dict(padding=1)),
  ((2, 4, 9, 8), (6, 4, 3, 3), dict(stride=2, padding=1)),
  ((1, 3, 10, 9), (4, 3, 3, 3), dict(dilation=2, padding=2)),
  ((2, 4, 9, 9), (6, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
  ((2, 4, 8, 8), (4, 1, 3, 3), dict(padding=1, groups=4)),                  # depthwise
  ((2, 4, 9, 9), (8, 1, 3, 3), dict(stride=2, padding=2, dilation=2, groups=4)),   # depthwise, multiplier 2
  ((2, 5, 7, 6), (3, 5, 1, 1), dict()),                                    # 1x1
  ((1, 3, 11, 11), (4, 3, 1, 1), dict(stride=3)),                           # 1x1 stride 3
  ((1, 3, 13, 12), (4, 3, 7, 7), dict(stride=2, padding=3)),                # the ResNet stem, small
  ((2, 3, 11, 10), (4, 3, 5, 3), dict(stride=(2, 3), padding=(1, 2), dilation=(1, 2))),
  ((2, 3, 6, 7), (4, 3, 3, 2), dict(padding="same", dilation=2)),
  ((1, 2, 5, 5), (3, 2, 5, 5), dict(padding=4, stride=3)),                  # padding past the kernel's reach
  ((1, 2, 9, 6), (3, 2, 2, 2), dict(stride=(4, 3))),                        # stride past the kernel: phases no tap reaches
  ((0, 3, 8, 8), (4, 3, 3, 3), dict(stride=2, padding=1)),                  # empty batch
]


@pytest.mark.parametrize("xs,ws,kw", CASES, ids=[str(c[2]) or "plain" for c in CASES])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_conv2d_vs_torch(xs, ws, kw, bias):
  shapes = [xs, ws] + ([(ws[0],)] if bias else [])
  helper_test_op(shapes, lambda x, w, *b: F.conv2d(x, w, *b, **kw), lambda x, w, *b: x.conv2d(w, *b, **kw), **TOL)


@pytest.mark.parametrize("kw", [dict(padding=2), dict(stride=2, dilation=3, padding=1), dict(padding="same", groups=2)])
def test_conv1d_vs_torch(kw):
  helper_test_op([(2, 4, 13), (6, 4 // kw.get("groups", 1), 5), (6,)], lambda x, w, b: F.conv1d(x, w, b, **kw),
                 lambda x, w, b: x.conv1d(w, b, **kw), **TOL)


def test_conv_of_views_and_computed_inputs():
  # a transposed, flipped input and a computed one (relu, scale: the template's prologue on the window tiles)
  helper_test_op([(3, 2, 7, 6), (4, 3, 3, 3), (4,)], lambda x, w, b: F.conv2d(x.permute(1, 0, 3, 2).flip(3), w, b, padding=1),
                 lambda x, w, b: x.permute(1, 0, 3, 2).flip(3).conv2d(w, b, padding=1), **TOL)
  helper_test_op([(2, 3, 8, 8), (5, 3, 3, 3)], lambda x, w: torch.relu(F.conv2d(torch.relu(x) * 0.5, w, stride=2, padding=1)),
                 lambda x, w: (x.relu() * 0.5).conv2d(w, stride=2, padding=1).relu(), **TOL)


def test_double_backward(device):
  """The custom gradient is lazy Tensor ops: differentiable again (grad of the input gradient's norm)."""
  rng = np.random.default_rng(0)
  xn, wn = rng.standard_normal((2, 3, 7, 7)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
  xt, wt = torch.tensor(xn, requires_grad=True), torch.tensor(wn, requires_grad=True)
  (gx,) = torch.autograd.grad((F.conv2d(xt, wt, stride=2, padding=1) ** 2).sum(), xt, create_graph=True)
  (gx * gx).sum().backward()
  x, w = Tensor(xn, requires_grad=True), Tensor(wn, requires_grad=True)
  (lx,) = lazygrad.grad((x.conv2d(w, stride=2, padding=1) ** 2).sum(), x, create_graph=True)
  (lx * lx).sum().backward()
  np.testing.assert_allclose(lx.numpy(), gx.detach().numpy(), rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-3, atol=1e-2)
  np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-2)


# ---------------------------------------------------------------- structure: one kernel, no taps, no columns

def _conv_graph(xs, ws, kw, bias=True):
  rng = np.random.default_rng(0)
  x = Tensor(rng.standard_normal(xs).astype(np.float32), requires_grad=True)
  w = Tensor(rng.standard_normal(ws).astype(np.float32), requires_grad=True)
  b = Tensor(rng.standard_normal(ws[0]).astype(np.float32), requires_grad=True) if bias else None
  return x, w, b, x.conv2d(w, b, **kw).relu()


@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, padding=1), dict(stride=2, padding=2, dilation=2, groups=2)])
def test_forward_is_one_template_kernel(kw):
  x, w, b, out = _conv_graph((2, 4, 9, 9), (8, 4 // kw.get("groups", 1), 3, 3), kw)
  (item,) = schedule(out)
  k = item.kernel
  assert k.contraction is not None and template_ok(k), item
  assert item.name.startswith(("mm_bias_relu", "bmm_bias_relu")), item.name   # bias and relu in the epilogue
  assert math.prod(item.shape) == out.numel()
  # padding is a masked load with the window's index math (ih = oh * stride + kh * dilation), no div/mod
  src = triton_program(k, interp=False).source
  s, d = kw.get("stride", 1), kw.get("dilation", 1)
  ih = re.findall(r"(t\d+) = \(m\d+(?: \* (\d+))? \+ ka\d+(?: \* (\d+))?\)", src)
  assert {(int(a or 1), int(b or 1)) for _, a, b in ih} == {(s, d)}, ih
  (load,) = [ln for ln in src.splitlines() if "tl.load(in1_ptr" in ln]
  assert all(f"({t} >= " in load for t, _, _ in ih), load


@pytest.mark.parametrize("xs,ws,kw", [((2, 4, 9, 9), (8, 4, 3, 3), dict(padding=1)), ((2, 4, 9, 8), (8, 4, 3, 3), dict(stride=2, padding=1)),
                                      ((2, 4, 8, 8), (8, 2, 3, 3), dict(padding=1, groups=2)), ((2, 4, 7, 7), (8, 4, 1, 1), dict())])
def test_no_buffer_larger_than_inputs_and_outputs(xs, ws, kw):
  """A conv's forward and backward: every stored buffer (each kernel's output) is at most the sum of the
  conv's inputs and outputs (the tap stack and the column buffer were k*k times the input)."""
  x, w, b, out = _conv_graph(xs, ws, kw)
  (out * Tensor.randn(*out.shape).realize()).sum().backward()
  items = schedule(out, x.grad, w.grad, b.grad)
  limit = x.numel() + w.numel() + out.numel() + b.numel()
  for it in items: assert math.prod(it.shape) <= limit, (it, limit)
  contractions = [it for it in items if it.kernel.contraction is not None]
  assert len(contractions) == 3, items   # forward, input gradient, weight gradient
  for it in contractions: assert template_ok(it.kernel), it


@pytest.mark.parametrize("xs,ws,kw", [((2, 4, 9, 8), (6, 4, 3, 3), dict(stride=2, padding=1)), ((2, 4, 8, 8), (6, 4, 1, 1), dict(stride=2)),
                                      ((1, 2, 11, 7), (4, 1, 3, 2), dict(stride=(3, 2), padding=(1, 0), dilation=(2, 1), groups=2))])
def test_strided_input_gradient_is_subpixel(xs, ws, kw):
  """A strided conv's input gradient splits by output phase (tensor_nn._subpixel_input_grad): one contraction whose
  space is at most half the zero-spread transposed conv's (N * C_in * H * W * C_out/groups * k: stride^2 times the
  useful products), and no kernel of the schedule is larger than the conv's inputs and outputs."""
  x, w, _, _ = _conv_graph(xs, ws, kw, bias=False)
  out = x.conv2d(w, **kw)
  (gx,) = lazygrad.grad((out * Tensor.randn(*out.shape).realize()).sum(), x)
  items = schedule(gx)
  contractions = [it for it in items if it.kernel.contraction is not None]
  assert len(contractions) == 1, items
  item = contractions[0]
  zero_spread = xs[0] * xs[1] * xs[2] * xs[3] * ws[0] // kw.get("groups", 1) * ws[2] * ws[3]
  assert math.prod(item.shape) * 2 <= zero_spread, (item, zero_spread)
  assert all(math.prod(it.shape) <= x.numel() + w.numel() + out.numel() for it in items if it.kernel.contraction is None), items


def test_custom_vjp_replaces_the_walk():
  """autograd.custom_vjp: backward calls the given function instead of differentiating the node's graph."""
  from lazygrad.autograd import custom_vjp
  x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
  y = custom_vjp(x * 2, (x,), lambda g: (g * 10,))
  y.sum().backward()
  np.testing.assert_allclose(x.grad.numpy(), [10.0, 10.0, 10.0])
  with pytest.raises(RuntimeError): custom_vjp(y, (x,), lambda g: (g,))


# ---------------------------------------------------------------- compiled for Hopper

def test_conv_hopper_tensor_cores_forward_and_backward(device):
  """Forward, input gradient and weight gradient of a 3x3 stride-2 padded conv with bias and relu compile for
  sm_90 in fp32, fp16 and bf16; the fp16/bf16 (and tf32) dots use tensor cores (wgmma or mma.sync)."""
  if device != "interp": pytest.skip("compiled once, from the interp run")
  jobs, tags = [], []
  try:
    for dt in ("float", "half", "bfloat16", "tf32"):
      lazygrad.backends.cuda.matmul.allow_tf32 = dt == "tf32"
      cast = (lambda t: t) if dt in ("float", "tf32") else getattr(Tensor, dt)
      x = cast(Tensor.randn(4, 32, 16, 16)).realize().requires_grad_()
      w = cast(Tensor.randn(64, 32, 3, 3)).realize().requires_grad_()
      b = cast(Tensor.randn(64)).realize().requires_grad_()
      out = x.conv2d(w, b, stride=2, padding=1).relu()
      (out * cast(Tensor.randn(*out.shape)).realize()).sum().backward()
      kernels = [it.kernel for it in schedule(out, x.grad, w.grad) if it.kernel.contraction is not None]
      assert len(kernels) == 3 and all(template_ok(k) for k in kernels), kernels
      for k in kernels: jobs.append(hopper_job(k)); tags.append(f"{dt}:{k.name}")
  finally:
    lazygrad.backends.cuda.matmul.allow_tf32 = False
  results = compile_for_hopper(jobs)
  for tag, res in zip(tags, results):
    if not tag.startswith("float:"): assert {"wgmma", "mma.sync"} & set(res["ptx_has"]), (tag, res["ptx_has"])
