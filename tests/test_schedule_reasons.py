"""The scheduler's decisions, asserted by their reasons (not only by kernel counts): why a
value got a buffer of its own, the cost rule that keeps transcendental prologues out of
contractions, and the Contraction the Kernel IR records for matmul-shaped reduces."""
from __future__ import annotations
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, nn, no_grad
from lazygrad.ops import Ops
from lazygrad.scheduler import Reason
from lazygrad.scheduler.graph import COSTLY_OPS


def _realized(*shapes, seed=0):
  rng = np.random.default_rng(seed)
  return [Tensor(rng.standard_normal(s).astype(np.float32)).realize() for s in shapes]


def _costly_in_operands(item) -> set:
  """Costly ops (transcendentals, divisions, random) in a contraction's operand expressions:
  what its k loop would recompute for every output column."""
  c = item.kernel.contraction
  return {e.op for e in c.a.walk() + c.b.walk() if e.op in COSTLY_OPS}


def test_softmax_is_one_kernel_fed_by_its_input():
  (x,) = _realized((16, 33))
  (item,) = lazygrad.schedule(x.softmax(-1))
  assert item.reason is Reason.TARGET and item.reasons == (Reason.INPUT,)
  assert item.name.startswith("softmax_") and item.shape == (16, 33)


def test_layer_norm_is_one_kernel():
  x, w, b = _realized((16, 32), (32,), (32,))
  (item,) = lazygrad.schedule(x.layer_norm((32,), w, b))
  assert item.reason is Reason.TARGET and set(item.reasons) == {Reason.INPUT}
  assert item.name.startswith("norm_")


def test_linear_relu_forward_is_one_contraction_kernel():
  x, w, b = _realized((64, 80), (96, 80), (96,))
  (item,) = lazygrad.schedule((x @ w.T + b).relu())
  c = item.kernel.contraction
  assert c is not None and c.sizes(item.kernel.shape) == (1, 64, 96, 80)
  assert item.name.startswith("mm_bias_relu_")
  assert item.reasons == (Reason.INPUT,) * 3


def test_random_operand_is_stored_not_recomputed_per_column():
  """randn's Box-Muller (log, sqrt, sin) under a matmul would run once per output column."""
  (w,) = _realized((96, 80))
  items = lazygrad.schedule(Tensor.randn(64, 80) @ w.T)
  mm = [it for it in items if it.kernel.contraction is not None]
  assert len(mm) == 1 and not _costly_in_operands(mm[0])
  assert Reason.COSTLY_BROADCAST in mm[0].reasons


def test_layer_norm_before_linear_is_stored_once():
  x, w, g, b = _realized((64, 80), (96, 80), (80,), (80,))
  items = lazygrad.schedule(x.layer_norm((80,), g, b) @ w.T)
  assert len(items) == 2   # the normalised rows (one row kernel), then the matmul
  norm, mm = items
  assert norm.reason is Reason.COSTLY_BROADCAST and norm.name.startswith("norm_")
  assert mm.kernel.contraction is not None and not _costly_in_operands(mm)
  assert mm.reasons[0] is Reason.COSTLY_BROADCAST


def test_cheap_prologue_stays_fused_into_the_contraction():
  """A cast, a scale and a negation cost no more than the load: they stay in the operand."""
  x, w = _realized((32, 48), (40, 48))
  (item,) = lazygrad.schedule((-(x.half().float() * 0.5)) @ w.T)
  c = item.kernel.contraction
  assert c is not None and not _costly_in_operands(item)
  assert {e.op for e in c.a.walk()} >= {Ops.LOAD, Ops.CAST}


def test_conv_reasons(device):
  img, w = _realized((2, 3, 8, 8), (4, 3, 3, 3))
  items = lazygrad.schedule(img.relu().conv2d(w, padding=1))
  *pre, conv = items
  assert conv.kernel.contraction is not None and conv.reason is Reason.TARGET
  # relu(img) is read through overlapping windows (no stack of taps: one view). numpy would evaluate it
  # over the whole window space, so on cpu it is stored once; the Triton template computes the cheap
  # relu on its window tiles (a prologue)
  if device == "cpu":
    assert len(pre) == 1 and pre[0].reason is Reason.MULTI_VIEW and list(conv.reasons) == [Reason.MULTI_VIEW, Reason.INPUT]
  else:
    assert pre == [] and Ops.WHERE in {e.op for e in conv.kernel.contraction.a.walk()}


def test_reduce_read_in_a_new_space_is_stored_with_its_epilogue():
  x, w = _realized((8, 16), (4, 3))
  s = (x.sum(-1) * 2 + 1).reshape(2, 4)   # per-row sums, an epilogue, then read as a matrix
  first, mm = lazygrad.schedule(s @ w)
  assert first.reason is Reason.REDUCE_NEW_SPACE and first.shape == (8,)   # the epilogue is in the sum's kernel
  assert mm.reasons[0] is Reason.REDUCE_NEW_SPACE


def test_reduce_over_other_axes_than_its_reader_is_a_misfit():
  (x,) = _realized((8, 16))
  # (a mean would be stored for the cost rule first: its division by n is a costly op)
  items = lazygrad.schedule((x - x.sum(0, keepdim=True)).sum(-1))
  assert [it.reason for it in items] == [Reason.REDUCE_MISFIT, Reason.TARGET]


def test_nofuse_reason():
  x, y = _realized((4, 4), (4, 4))
  with pytest.MonkeyPatch.context() as mp:
    import lazygrad.scheduler as sch
    mp.setattr(sch, "_schedule_cache", {})
    mp.setenv("NOFUSE", "1")
    items = lazygrad.schedule((x + y).exp())
  assert [it.reason for it in items] == [Reason.NOFUSE, Reason.TARGET]


def _transformer_block_step():
  Tensor.manual_seed(0)
  d, heads, T, B = 32, 2, 8, 2
  block = nn.TransformerEncoderLayer(d, heads, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=True)
  x = Tensor.randn(B, T, d).realize()
  loss = block(x).square().mean()
  loss.backward()
  params = list(block.parameters())
  with no_grad():
    for p in params: p.assign(p - 0.01 * p.grad)
  return [loss] + params


def test_transformer_block_contractions_have_no_costly_prologue():
  items = lazygrad.schedule(*_transformer_block_step())
  contracting = [it for it in items if it.kernel.contraction is not None]
  assert len(contracting) >= 10   # qkv, scores, P.V, out-proj, fc1, fc2 and their gradients
  assert all(not _costly_in_operands(it) for it in contracting), [it.name for it in contracting if _costly_in_operands(it)]
  # every kernel that reduces a product of a batched-matmul shape records it as a contraction
  for it in items:
    body = it.kernel.body
    if it.kernel.contraction is None and body.op is Ops.REDUCE and body.arg[0] is Ops.ADD and body.srcs[0].op is Ops.MUL:
      pytest.fail(f"{it.name}: a sum of a product without a contraction")


def test_transformer_block_matmuls_render_tl_dot():
  """Forward and backward of a transformer block: every matmul-shaped kernel (qkv, projections,
  MLP, their input and weight gradients fused with the update) is rendered by the tl.dot template,
  whatever prologue and epilogue are fused into it; the attention itself (scores, P.V and their
  gradients) is the flash-attention template's three kernels, on tl.dot too."""
  from lazygrad.kernels.triton import triton_program
  items = lazygrad.schedule(*_transformer_block_step())
  matmuls = [it for it in items if it.kernel.contraction is not None and it.kernel.contraction.m and it.kernel.contraction.n]
  attention = [it for it in items if it.kernel.body.op is Ops.ATTENTION]
  assert len(matmuls) >= 14 and sorted(it.name.split("_")[1] for it in attention) == ["bwd", "bwd", "fwd"]
  for it in matmuls + attention:
    src = triton_program(it.kernel).source
    assert "tl.dot(" in src, it.name
  assert any(it.name.startswith("mm_wgrad_update") for it in matmuls)


def test_reasons_survive_the_schedule_cache():
  x, w, b = _realized((8, 12), (6, 12), (6,))
  first = [(it.reason, it.reasons) for it in lazygrad.schedule((x @ w.T + b).relu().sum())]
  x2, w2, b2 = _realized((8, 12), (6, 12), (6,), seed=1)
  again = [(it.reason, it.reasons) for it in lazygrad.schedule((x2 @ w2.T + b2).relu().sum())]
  assert first == again


def test_repr_is_one_line():
  x, w = _realized((8, 12), (6, 12))
  (item,) = lazygrad.schedule(x @ w.T)
  text = repr(item)
  assert "\n" not in text and item.name in text and "input" in text


def test_cost_rule_keeps_values_and_gradients(device):
  """The extra kernels of the cost rule change no numbers (vs torch)."""
  rng = np.random.default_rng(3)
  xn, wn, gn = (rng.standard_normal(s).astype(np.float32) for s in ((6, 10), (7, 10), (10,)))
  x, w, g = (Tensor(a, requires_grad=True) for a in (xn, wn, gn))
  out = (x.layer_norm((10,), g) @ w.T).exp().sum()
  out.backward()
  tx, tw, tg = (torch.tensor(a, requires_grad=True) for a in (xn, wn, gn))
  ref = (torch.nn.functional.layer_norm(tx, (10,), tg) @ tw.T).exp().sum()
  ref.backward()
  np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-4)
  for a, b in ((x, tx), (w, tw), (g, tg)): np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3, atol=1e-4)
