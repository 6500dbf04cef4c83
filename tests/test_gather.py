"""GATHER (a load at a computed index, fused into its readers) and SCATTER_ADD (its gradient, a template kernel):
values and gradients vs torch for embedding, cross-entropy/nll targets, gather, take, integer indexing and scatter_add;
out-of-range indices raise IndexError (never garbage, never an out-of-bounds access); fusion and kernel counts; the
Triton kernels compile for sm_90."""
import re
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import lazygrad
import lazygrad.nn.functional as F
from lazygrad import Tensor, schedule
from lazygrad.ops import Ops
from lazygrad.scheduler import Reason
from helpers import compile_for_hopper, hopper_job

RNG = np.random.default_rng(0)


def _close(a, b, tol=1e-5):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _pair(shape, *, grad=True):
  x = RNG.standard_normal(shape).astype(np.float32)
  return Tensor(x, requires_grad=grad), torch.tensor(x, requires_grad=grad)


def _ids(values, dtype):
  arr = np.asarray(values)
  return Tensor(arr.astype(np.int32 if dtype == "int32" else np.int64)), torch.tensor(arr, dtype=torch.int64)


def _backward_both(lz, tz):
  """Backward of a random projection of both outputs (the same weights)."""
  w = RNG.standard_normal(tz.shape).astype(np.float32)
  (lz * Tensor(w)).sum().backward()
  (tz * torch.tensor(w)).sum().backward()


def _ops(t: Tensor) -> set:
  """The kernel IR ops of t's schedule."""
  return {e.op for it in schedule(t) for e in it.kernel.body.walk()}


# ---- embedding

@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_values_and_grads(dtype, padding_idx):
  w, tw = _pair((7, 5))
  ids, tids = _ids([[1, 2, 2, 6], [0, 2, 1, 1], [6, 6, 6, 3]], dtype)   # repeated ids accumulate in the gradient
  out, tout = F.embedding(ids, w, padding_idx=padding_idx), TF.embedding(tids, tw, padding_idx=padding_idx)
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(w.grad.numpy(), tw.grad.numpy())


def test_embedding_is_a_gather_and_its_gradient_a_scatter_add():
  w, _ = _pair((50, 4))
  out = Tensor(np.array([[3, 49], [3, 0]])).embedding(w)
  assert Ops.GATHER in _ops(out) and Ops.REDUCE not in _ops(out)   # no one-hot sum
  (out * out).sum().backward()
  items = schedule(w.grad)
  assert any(it.kernel.body.op is Ops.SCATTER_ADD for it in items)
  # nothing of the size tokens x vocab (x dim) is computed: O(tokens * dim) work
  assert max(int(np.prod(it.kernel.shape)) for it in items) <= 50 * 4


def test_embedding_double_backward():
  """The gradient of the scatter-add is a gather: d/dw of sum(dL/dw * v) matches torch."""
  w, tw = _pair((6, 3))
  ids, tids = _ids([[0, 5, 5], [2, 0, 1]], "int64")
  v = RNG.standard_normal((6, 3)).astype(np.float32)
  gw, = lazygrad.autograd.grad((F.embedding(ids, w) ** 3).sum(), [w], create_graph=True)
  tgw, = torch.autograd.grad((TF.embedding(tids, tw) ** 3).sum(), tw, create_graph=True)
  _close(gw.numpy(), tgw.detach().numpy())
  g2, = lazygrad.autograd.grad((gw * Tensor(v)).sum(), [w])
  tg2, = torch.autograd.grad((tgw * torch.tensor(v)).sum(), tw)
  _close(g2.numpy(), tg2.numpy(), 1e-4)


def test_embedding_positional_layernorm_fuses():
  """tok_emb(ids) + pos_emb[:T] then layer_norm: the gather adds no kernel over the same graph on a dense input."""
  B, T, D, V = 2, 5, 8, 11
  w, _ = _pair((V, D))
  pos, _ = _pair((T, D))
  ids = Tensor(RNG.integers(0, V, (B, T)))
  dense = Tensor(RNG.standard_normal((B, T, D)).astype(np.float32))
  norm = lazygrad.nn.LayerNorm(D)
  with lazygrad.no_grad():
    gathered, plain = norm(ids.embedding(w) + pos), norm(dense + pos)
    assert len(schedule(gathered)) == len(schedule(plain))
    ref = TF.layer_norm(torch.tensor(w.numpy())[torch.tensor(ids.numpy())] + torch.tensor(pos.numpy()), (D,))
    _close(gathered.numpy(), ref.numpy(), 1e-4)


# ---- cross-entropy and nll targets

@pytest.mark.parametrize("kw", [{}, {"weight": True}, {"ignore_index": 1}, {"weight": True, "ignore_index": 0},
                                {"reduction": "sum"}, {"reduction": "none", "weight": True}, {"label_smoothing": 0.2}])
def test_cross_entropy_from_matmul_logits(kw):
  """Logits from a matmul (a buffer anyway): the target's logit is gathered; values and gradients as torch."""
  h, th = _pair((9, 6))
  m, tm = _pair((6, 5))
  y = np.array([0, 1, 4, 1, 3, 1, 2, 0, 4])
  kw_l, kw_t = dict(kw), dict(kw)
  if kw.get("weight"):
    wv = RNG.random(5).astype(np.float32)
    kw_l["weight"], kw_t["weight"] = Tensor(wv), torch.tensor(wv)
  logits = h @ m
  loss, tloss = logits.cross_entropy(Tensor(y), **kw_l), TF.cross_entropy(th @ tm, torch.tensor(y), **kw_t)
  if not kw.get("label_smoothing"): assert Ops.GATHER in _ops(loss)
  _close(loss.numpy(), tloss.detach().numpy())
  _backward_both(loss, tloss)
  _close(h.grad.numpy(), th.grad.numpy())
  _close(m.grad.numpy(), tm.grad.numpy())


@pytest.mark.parametrize("stored", [True, False])
def test_nll_loss_targets(stored):
  """nll_loss on stored log-probabilities gathers them; on computed ones it keeps the fused one-hot select."""
  x, tx = _pair((4, 3, 2))   # (N, C, d): the class dim is 1
  y = np.array([[0, 2], [1, 1], [2, -100], [0, 0]])
  logp = x.log_softmax(1)
  if stored: logp = logp.contiguous()
  loss, tloss = logp.nll_loss(Tensor(y)), TF.nll_loss(tx.log_softmax(1), torch.tensor(y))
  assert (Ops.GATHER in _ops(loss)) == stored
  _close(loss.numpy(), tloss.detach().numpy())
  loss.backward(); tloss.backward()
  _close(x.grad.numpy(), tx.grad.numpy())


# ---- gather, take, indexing, scatter_add

@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_gather_every_dim(dim, dtype):
  x, tx = _pair((3, 4, 5))
  shape = [2, 3, 4]
  shape[dim] = 6   # longer than the source along dim: repeated indices
  idx, tidx = _ids(RNG.integers(0, (3, 4, 5)[dim], shape), dtype)
  out, tout = x.gather(dim, idx), tx.gather(dim, tidx)
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(x.grad.numpy(), tx.grad.numpy())


def test_gather_non_contiguous_source_and_index():
  x, tx = _pair((5, 4))
  i = RNG.integers(0, 4, (3, 5))
  idx, tidx = Tensor(i).transpose(0, 1), torch.tensor(i).transpose(0, 1)   # (5, 3), strided
  src, tsrc = (x * 2).transpose(0, 1)[:, 1:], (tx * 2).transpose(0, 1)[:, 1:]   # computed, permuted, sliced: (4, 4)
  out, tout = src.gather(1, idx[:4]), tsrc.gather(1, tidx[:4])
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("pad", [(0, 0, 1, 2), (1, 1, 0, 0), (2, 1, 1, 0)], ids=["other_dim", "gathered_dim", "both"])
def test_gather_padded_source(pad):
  """A padded source: a mask on another dim stays in the gather's view (padding reads 0); one on the gathered dim
  is copied first."""
  x, tx = _pair((3, 4))
  i = RNG.integers(0, 4 + pad[0] + pad[1], (3 + pad[2] + pad[3], 5))
  out, tout = x.pad(pad).gather(1, Tensor(i)), TF.pad(tx, pad).gather(1, torch.tensor(i))
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(x.grad.numpy(), tx.grad.numpy())


def test_take_of_a_realized_transposed_view():
  """take reads the flattened transpose of a realized tensor: views a gather cannot index, copied first."""
  x = RNG.standard_normal((3, 4)).astype(np.float32)
  src = Tensor(x).realize().transpose(0, 1)
  i = np.array([0, 5, 11, 3])
  np.testing.assert_equal(src.take(Tensor(i)).numpy(), x.T.reshape(-1)[i])


@pytest.mark.parametrize("shape,ishape,dim", [((1, 4), (1, 3), 1), ((3, 1), (5, 1), 0), ((3, 4), (0, 4), 0), ((3, 4), (3, 0), 1)])
def test_gather_size_one_and_empty(shape, ishape, dim):
  x, tx = _pair(shape)
  i = RNG.integers(0, shape[dim], ishape)
  out, tout = x.gather(dim, Tensor(i)), tx.gather(dim, torch.tensor(i))
  assert out.shape == tuple(tout.shape)
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(x.grad.numpy(), tx.grad.numpy())


def test_take_negative_and_repeated():
  x, tx = _pair((3, 4))
  i = np.array([[-1, 0, 11], [-12, 5, 5]])
  out, tout = x.take(Tensor(i)), tx.take(torch.tensor(i))
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("build", [
  lambda x, i: x[i],
  lambda x, i: x[:, i],
  lambda x, i: x[i, 1:],
  lambda x, i: x[i, :, i],      # two index tensors, not adjacent: their dims go first
  lambda x, i: x[1:, i, i],     # adjacent: in place
  lambda x, i: x.transpose(0, 2)[i],
], ids=["first", "middle", "with_slice", "apart", "adjacent", "permuted"])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_indexing(build, dtype):
  x, tx = _pair((3, 3, 3))
  idx, tidx = _ids([[-1, 0], [2, -3], [1, 1]], dtype)
  out, tout = build(x, idx), build(tx, tidx)
  assert out.shape == tuple(tout.shape)
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(x.grad.numpy(), tx.grad.numpy())


def test_index_select_int_values():
  x = np.arange(12, dtype=np.int32).reshape(3, 4)
  np.testing.assert_equal(Tensor(x).index_select(1, Tensor(np.array([3, 0, 3]))).numpy(), x[:, [3, 0, 3]])


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add_values_and_grads(dim):
  x, tx = _pair((3, 5))
  ishape = (4, 3) if dim == 0 else (2, 4)
  src, tsrc = _pair(ishape)   # torch's gradient needs src of the index's shape
  i = RNG.integers(0, (3, 5)[dim], ishape)
  out, tout = x.scatter_add(dim, Tensor(i), src), tx.scatter_add(dim, torch.tensor(i), tsrc)
  assert Ops.SCATTER_ADD in _ops(out)
  _close(out.numpy(), tout.detach().numpy())
  _backward_both(out, tout)
  _close(x.grad.numpy(), tx.grad.numpy())
  _close(src.grad.numpy(), tsrc.grad.numpy())


# ---- out-of-range indices: an error, not garbage

@pytest.mark.parametrize("build", [
  lambda: Tensor(np.ones((3, 4), np.float32)).gather(1, Tensor(np.array([[0], [4], [1]]))),
  lambda: Tensor(np.ones((3, 4), np.float32)).gather(0, Tensor(np.array([[0, -1, 0, 0]]))),
  lambda: Tensor(np.array([[1, 2, 99]])).embedding(Tensor(np.ones((5, 2), np.float32))),
  lambda: Tensor(np.ones((5, 2), np.float32)).take(Tensor(np.array([10]))),
  lambda: Tensor(np.ones((5, 2), np.float32))[Tensor(np.array([-6]))],
  lambda: Tensor(np.ones((2, 3), np.float32)).scatter_add(1, Tensor(np.array([[0, 3]])), Tensor(np.ones((1, 2), np.float32))),
], ids=["gather", "gather_negative", "embedding", "take", "index", "scatter_add"])
def test_out_of_range_raises(build):
  with pytest.raises(IndexError, match=r"out of range|out of bounds"): build().realize()


def test_out_of_range_embedding_gradient_raises():
  w = Tensor(np.ones((4, 2), np.float32), requires_grad=True)
  Tensor(np.array([1, 7])).embedding(w).sum().backward()
  with pytest.raises(IndexError, match="embedding"): w.grad.realize()


# ---- fusion and kernels

def test_computed_source_is_stored_and_gather_fuses():
  x, _ = _pair((4, 6))
  src = (x * 3).exp()
  out = src.gather(1, Tensor(RNG.integers(0, 6, (4, 2)))) + 1
  items = schedule(out)
  assert [it.reason for it in items] == [Reason.GATHER_SOURCE, Reason.TARGET]
  assert Ops.GATHER in {e.op for e in items[-1].kernel.body.walk()}


def test_gather_and_scatter_add_kernels_compile_for_hopper(device, tmp_path):
  """The gather (a load at base + clamped index * stride) and the scatter-add (tl.atomic_add) compile for sm_90."""
  if device != "interp": pytest.skip("compiled once, from the interp run")
  w = Tensor(RNG.standard_normal((64, 32)).astype(np.float32), requires_grad=True)
  ids = Tensor(RNG.integers(0, 64, (4, 16)))
  out = ids.embedding(w) * 2
  (out * out).sum().backward()
  items = schedule(out, w.grad)
  gather = [it for it in items if any(e.op is Ops.GATHER for e in it.kernel.body.walk())]
  scatter = [it for it in items if it.kernel.body.op is Ops.SCATTER_ADD]
  assert gather and scatter
  jobs = [hopper_job(it.kernel, ptx_out=str(tmp_path / f"{i}.ptx")) for i, it in enumerate(gather[:1] + scatter[:1])]
  assert "tl.atomic_add" in jobs[1]["source"] and "tl.minimum(tl.maximum(" in jobs[0]["source"]
  results = compile_for_hopper(jobs, str(tmp_path))
  assert len(results) == 2
  gptx, sptx = (open(j["ptx_out"]).read() for j in jobs)
  assert ".target sm_90" in gptx and "ld.global" in gptx
  # relaxed float adds (Triton 3.9 vectorises them: red.global.gpu.relaxed.add.v4.f32)
  assert re.search(r"(red|atom)\.global\.gpu\.relaxed\.add(\.v\d)?\.f32", sptx) and ".target sm_90" in sptx
