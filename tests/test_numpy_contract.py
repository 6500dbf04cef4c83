"""Contractions on the numpy device vs torch: the renderer emits contract(a, b, dims, ...)
with the Kernel IR's (batch, m, n, k) dims as a constant (or, for a sum(a * b) the IR has no
Contraction for, the dims its one fallback classifies), and contract() decides roles from
those dims, never from the arrays' shapes. Values and gradients vs torch, and the emitted
source checked for the dims. cpu only: the numpy renderer is what is under test."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import compare, make_inputs, tol_for

import lazygrad
from lazygrad import Tensor


@pytest.fixture(autouse=True)
def _cpu_only(device):
  if device != "cpu": pytest.skip("the numpy renderer's contractions: cpu device only")


def contracting_kernels(*ts) -> list:
  """The schedule items of ts whose kernel has an IR Contraction, each checked to pass exactly
  the IR's dims (and the kernel's shape) to contract / contract_cat in its numpy source."""
  found = []
  for it in lazygrad.schedule(*ts):
    k, c, src = it.kernel, it.kernel.contraction, it.source
    if "contract" in src: assert "dims classified by the renderer" in src or c is not None, src
    if c is None: continue
    dims = (c.batch, c.m, c.n, c.k)
    call = "contract_cat(" if "contract_cat(" in src else "contract("
    assert f"{dims}, {tuple(k.shape)}, np." in src and call in src, f"dims {dims} not passed:\n{src}"
    found.append(it)
  return found


def check(torch_fn, shapes, lazy_fn=None, dtype="float32", grad=True, min_fwd=1, min_bwd=1, rtol=None, atol=None):
  """Forward (and, for floats, the gradients of a random projection) vs torch; at least
  min_fwd / min_bwd contracting kernels, each passing the IR's dims."""
  lazy_fn = lazy_fn or torch_fn
  arrays = make_inputs(shapes, dtype)
  d_rtol, d_atol = tol_for(dtype)
  rtol, atol = rtol or d_rtol or 0, atol or d_atol or 0
  grad = grad and np.dtype(dtype).kind == "f"
  tts = [torch.tensor(a, requires_grad=grad) for a in arrays]
  lts = [Tensor(a, requires_grad=grad) for a in arrays]
  tout, lout = torch_fn(*tts), lazy_fn(*lts)
  assert len(contracting_kernels(lout)) >= min_fwd
  compare(lout.numpy(), tout.detach().numpy(), rtol, atol, "forward")
  if not grad: return
  proj = np.random.default_rng(1).standard_normal(tout.shape).astype(np.float32).astype(arrays[0].dtype)
  (tout * torch.tensor(proj)).sum().backward()
  (lout * Tensor(proj)).sum().backward()
  grads = [t.grad for t in lts]
  assert len(contracting_kernels(*grads)) >= min_bwd
  for i, (tt, g) in enumerate(zip(tts, grads)):
    compare(g.numpy(), tt.grad.numpy(), rtol * 10, atol * 10, f"grad of input {i}")


def test_matmul(): check(lambda a, b: a @ b, [(17, 9), (9, 13)])
def test_bmm(): check(lambda a, b: a @ b, [(3, 7, 5), (3, 5, 6)])
def test_broadcast_batch_bmm(): check(lambda a, b: a @ b, [(3, 1, 4, 5), (2, 5, 6)])
def test_broadcast_batch_one_side(): check(lambda a, b: a @ b, [(2, 3, 4, 5), (5, 6)])
def test_matrix_vector(): check(lambda a, b: a @ b, [(7, 5), (5,)])
def test_vector_matrix(): check(lambda a, b: a @ b, [(5,), (5, 7)])
def test_dot(): check(lambda a, b: a @ b, [(11,), (11,)], min_bwd=0)   # the gradients are outer products: no reduce
def test_outer_sum(): check(lambda a, b: (a[:, :, None] * b[:, None, :]).sum(0), [(8, 5), (8, 6)])   # a.T @ b
def test_einsum_like_transposed(): check(lambda a, b: (a[:, :, None] * b.T[None]).sum(1), [(4, 5), (6, 5)])   # a @ b.T
def test_permuted_matmul(): check(lambda x, w: x.permute(0, 2, 3, 1) @ w, [(2, 5, 3, 4), (5, 6)])
def test_permuted_batch_matmul(): check(lambda x, y: x.permute(2, 0, 1) @ y.permute(1, 2, 0), [(4, 5, 3), (6, 3, 5)])
def test_transposed_sliced(): check(lambda a, b: a.T[1:, ::2] @ b[2:7, 1:], [(10, 9), (8, 6)])
def test_sum_of_products_over_two_dims():   # a batched dot; its gradients are elementwise
  check(lambda a, b: (a * b).sum((0, 2)), [(3, 4, 5), (3, 4, 5)], min_bwd=0)


def test_half_product_summed_in_float():
  """MUL in half, CAST to float, sum: the IR's contraction looks through the float cast."""
  check(lambda a, b: (a[:, :, None] * b[None]).float().sum(1), [(6, 7), (7, 5)], dtype="float16", grad=False, rtol=1e-2, atol=1e-2)


def test_fallback_reduced_dim_of_one_operand():
  """A reduced dim only one factor varies along: no IR contraction, the renderer's fallback
  sums it out of that factor first and passes its own dims (marked in the source)."""
  a, b = make_inputs([(4, 5), (5, 6)])
  lt = (Tensor(a)[:, :, None] * Tensor(b)[None]).sum((0, 1))
  its = lazygrad.schedule(lt)
  assert any(it.kernel.contraction is None and "dims classified by the renderer" in it.source for it in its)
  compare(lt.numpy(), (torch.tensor(a)[:, :, None] * torch.tensor(b)[None]).sum((0, 1)).numpy(), 1e-4, 1e-5)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 1, 1, 1), (1, 0, 2, 1), (1, 1, 1, 2)])
def test_conv2d_forward_backward(stride, padding, dilation, groups):
  fn = lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
  lfn = lambda x, w, b: x.conv2d(w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
  check(fn, [(2, 4, 9, 9), (6, 4 // groups, 3, 3), (6,)], lfn, rtol=1e-4, atol=1e-4, min_bwd=2)


def test_conv2d_forward_one_matmul_over_strided_windows():
  """conv forward is one contract() of the input's windows (a strided view of the padded input, no taps) with the IR's dims."""
  x, w = make_inputs([(2, 3, 8, 8), (4, 3, 3, 3)])
  lt = Tensor(x).conv2d(Tensor(w), padding=1)
  (k,) = contracting_kernels(lt)
  assert "contract(" in k.source and "contract_cat(" not in k.source, k.source
  compare(lt.numpy(), F.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy(), 1e-4, 1e-4)


def test_int64_matmul(): check(lambda a, b: a @ b, [(6, 7), (7, 5)], dtype="int64")
def test_int64_bmm(): check(lambda a, b: a @ b, [(2, 6, 7), (7, 5)], dtype="int64")
def test_float64_matmul(): check(lambda a, b: a @ b, [(9, 8), (8, 7)], dtype="float64")
def test_float16_matmul(): check(lambda a, b: a @ b, [(16, 32), (32, 8)], dtype="float16", rtol=1e-2, atol=2e-2)


def test_large_batch_of_tiny_matmuls():
  """Many tiny gemms: not the in-order broadcast matmul, the transposing one."""
  check(lambda a, b: a @ b, [(80, 2, 3), (80, 3, 2)])


def test_batch_dim_neither_operand_varies_along():
  """A kept dim both factors are broadcast along is a batch dim of the IR with size 1 in both arrays."""
  fn = lambda a, b: (a[:, None, :].expand(3, 4, 5) * b[:, None, :]).sum(2)
  check(fn, [(3, 5), (3, 5)], min_bwd=0)
  a, b = make_inputs([(3, 5), (3, 5)])
  ks = contracting_kernels(fn(Tensor(a), Tensor(b)))
  assert any(1 in it.kernel.contraction.batch for it in ks), [(it.kernel.contraction.batch, it.kernel.shape) for it in ks]
