"""nn functions vs torch: layer/batch/rms norm, attention, embedding, dropout, losses."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor
from helpers import helper_test_op, compare
from .common import arr


# ============================================================ normalisation

@pytest.mark.parametrize("shape,norm", [((2, 5), (5,)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((4, 6), 6)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(shape, norm, affine):
  ns = (norm,) if isinstance(norm, int) else norm
  shapes = [shape] + ([ns, ns] if affine else [])
  helper_test_op(shapes, lambda x, *wb: F.layer_norm(x, ns, *wb), lambda x, *wb: x.layer_norm(norm, *wb), atol=1e-4, grad_atol=1e-3)


def test_layer_norm_eps_and_weight_only():
  helper_test_op([(3, 4), (4,)], lambda x, w: F.layer_norm(x, (4,), w, eps=1e-2), lambda x, w: x.layer_norm(4, w, eps=1e-2),
                 atol=1e-4, grad_atol=1e-3)
  helper_test_op([(3, 4)], lambda x: F.layer_norm(x * 0.0 + 1.0, (4,)), lambda x: (x * 0.0 + 1.0).layer_norm(4), atol=1e-4, grad_atol=1e-3)


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 4)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train(shape, affine):
  c = shape[1]
  rm0, rv0 = arr((c,), -0.5, 0.5), arr((c,), 0.5, 1.5)
  trm, trv = torch.tensor(rm0), torch.tensor(rv0)
  lrm, lrv = Tensor(rm0.copy()), Tensor(rv0.copy())
  shapes = [shape] + ([(c,), (c,)] if affine else [])
  helper_test_op(shapes, lambda x, *wb: F.batch_norm(x, trm, trv, *wb, training=True, momentum=0.2),
                 lambda x, *wb: x.batch_norm(lrm, lrv, *wb, training=True, momentum=0.2), atol=1e-4, grad_atol=1e-3)
  compare(lrm.numpy(), trm.numpy(), 1e-5, 1e-6, "running_mean")
  compare(lrv.numpy(), trv.numpy(), 1e-5, 1e-6, "running_var")


def test_batch_norm_train_no_running_stats():
  helper_test_op([(4, 3, 2)], lambda x: F.batch_norm(x, None, None, training=True), lambda x: x.batch_norm(None, None, training=True),
                 atol=1e-4, grad_atol=1e-3)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 4)], ids=str)
def test_batch_norm_eval(shape):
  c = shape[1]
  rm, rv = arr((c,), -0.5, 0.5), arr((c,), 0.5, 1.5)
  helper_test_op([shape, (c,), (c,)], lambda x, w, b: F.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b, training=False, eps=1e-3),
                 lambda x, w, b: x.batch_norm(Tensor(rm), Tensor(rv), w, b, training=False, eps=1e-3), atol=1e-5, grad_atol=1e-4)


def test_rms_norm():
  helper_test_op([(3, 6), (6,)], lambda x, w: F.rms_norm(x, (6,), w), lambda x, w: x.rms_norm(6, w), atol=1e-5, grad_atol=1e-4)
  helper_test_op([(2, 3, 6)], lambda x: F.rms_norm(x, (3, 6), eps=1e-3), lambda x: x.rms_norm((3, 6), eps=1e-3), atol=1e-5, grad_atol=1e-4)


# ============================================================ attention, embedding, dropout

@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 5, 4), (2, 5, 6)), ((2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8)),
                                    ((1, 3, 4), (1, 3, 4), (1, 3, 2))], ids=str)
@pytest.mark.parametrize("mask", ["none", "causal", "bool", "float", "bool_bcast"])
def test_sdpa(shapes, mask):
  L, S = shapes[0][-2], shapes[1][-2]
  if mask == "causal":
    kw_t = kw_l = {"is_causal": True}
  elif mask == "none":
    kw_t = kw_l = {}
  else:
    r = np.random.default_rng(19)
    if mask == "float": m = r.uniform(-1, 1, size=(L, S)).astype(np.float32)
    elif mask == "bool":
      m = r.random((L, S)) < 0.7; m[:, 0] = True     # no fully-masked rows
    else:
      m = r.random((shapes[0][0],) + (1,) * (len(shapes[0]) - 2) + (S,)) < 0.7; m[..., 0] = True
    kw_t, kw_l = {"attn_mask": torch.tensor(m)}, {"attn_mask": Tensor(m)}
  helper_test_op(shapes, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw_t),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, **kw_l), atol=1e-5, grad_atol=1e-4)


def test_sdpa_scale_and_noncontiguous():
  helper_test_op([(2, 4, 3), (2, 4, 3), (2, 4, 3)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, scale=0.3), atol=1e-5, grad_atol=1e-4)
  helper_test_op([(4, 2, 3), (4, 2, 3), (4, 2, 3)],
                 lambda q, k, v: F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True),
                 lambda q, k, v: q.transpose(0, 1).scaled_dot_product_attention(k.transpose(0, 1), v.transpose(0, 1), is_causal=True),
                 atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("idx_shape", [(5,), (2, 3), (), (0,)], ids=str)
def test_embedding(idx_shape):
  idx = np.random.default_rng(20).integers(0, 6, size=idx_shape)
  helper_test_op([(6, 4)], lambda w: F.embedding(torch.tensor(idx), w), lambda w: Tensor(idx).embedding(w))


def test_embedding_repeated_and_int32():
  idx = np.array([[1, 1, 0], [1, 5, 5]], dtype=np.int32)
  helper_test_op([(6, 3)], lambda w: F.embedding(torch.tensor(idx).long(), w), lambda w: Tensor(idx).embedding(w))


def test_dropout():
  Tensor.manual_seed(5)
  x = Tensor.ones(100, 100)
  out = x.dropout(0.3).numpy()
  kept = out != 0
  assert abs(kept.mean() - 0.7) < 0.03
  np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
  np.testing.assert_array_equal(x.dropout(0.3, training=False).numpy(), x.numpy())
  np.testing.assert_array_equal(x.dropout(0.0).numpy(), x.numpy())
  assert (x.dropout(1.0).numpy() == 0).all()
  # gradient is the same mask, scaled
  w = Tensor.ones(50, 50, requires_grad=True)
  y = w.dropout(0.5)
  y.sum().backward()
  np.testing.assert_array_equal(w.grad.numpy(), y.numpy())


# ============================================================ losses

@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 5, 3)], ids=str)
def test_cross_entropy_indices(shape, reduction, smoothing):
  tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
  tgt = np.random.default_rng(21).integers(0, 5, size=tshape)
  helper_test_op([shape], lambda x: F.cross_entropy(x, torch.tensor(tgt), reduction=reduction, label_smoothing=smoothing),
                 lambda x: x.cross_entropy(Tensor(tgt), reduction=reduction, label_smoothing=smoothing), atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 5, 3)], ids=str)
def test_cross_entropy_probs(shape, smoothing):
  cdim = 1 if len(shape) > 1 else 0
  p = np.random.default_rng(22).random(shape).astype(np.float32)
  p = p / p.sum(cdim, keepdims=True)
  helper_test_op([shape], lambda x: F.cross_entropy(x, torch.tensor(p), label_smoothing=smoothing),
                 lambda x: x.cross_entropy(Tensor(p), label_smoothing=smoothing), atol=1e-5, grad_atol=1e-4)
  # the probabilities get a gradient too
  helper_test_op([shape, shape], lambda x, q: F.cross_entropy(x, q.softmax(cdim), label_smoothing=smoothing),
                 lambda x, q: x.cross_entropy(q.softmax(cdim), label_smoothing=smoothing), atol=1e-5, grad_atol=1e-4)


def test_cross_entropy_ignore_index_and_weight():
  tgt = np.array([0, 2, -100, 4, 1])
  w = np.array([0.5, 1.0, 2.0, 1.5, 0.2], dtype=np.float32)
  for smoothing in (0.0, 0.1):
    for reduction in ("mean", "sum", "none"):
      helper_test_op([(5, 5)],
                     lambda x: F.cross_entropy(x, torch.tensor(tgt), weight=torch.tensor(w), reduction=reduction, label_smoothing=smoothing),
                     lambda x: x.cross_entropy(Tensor(tgt), weight=Tensor(w), reduction=reduction, label_smoothing=smoothing),
                     atol=1e-5, grad_atol=1e-4)
  tgt2 = np.array([0, 2, 2, 4, 1])
  helper_test_op([(5, 5)], lambda x: F.cross_entropy(x, torch.tensor(tgt2), ignore_index=2),
                 lambda x: x.cross_entropy(Tensor(tgt2), ignore_index=2), atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 5, 3)], ids=str)
def test_nll_loss(shape, reduction):
  tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
  tgt = np.random.default_rng(23).integers(0, 5, size=tshape)
  helper_test_op([shape], lambda x: F.nll_loss(x.log_softmax(1 if len(shape) > 1 else 0), torch.tensor(tgt), reduction=reduction),
                 lambda x: x.log_softmax(1 if len(shape) > 1 else 0).nll_loss(Tensor(tgt), reduction=reduction), atol=1e-5, grad_atol=1e-4)


def test_nll_loss_weight_ignore():
  tgt = np.array([0, 2, 1, 1, 3])
  w = np.array([0.5, 1.0, 2.0, 1.5], dtype=np.float32)
  helper_test_op([(5, 4)], lambda x: F.nll_loss(x, torch.tensor(tgt), weight=torch.tensor(w)), lambda x: x.nll_loss(Tensor(tgt), weight=Tensor(w)))
  helper_test_op([(5, 4)], lambda x: F.nll_loss(x, torch.tensor(tgt), ignore_index=1), lambda x: x.nll_loss(Tensor(tgt), ignore_index=1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(reduction, weighted):
  t = np.random.default_rng(24).random((3, 4)).astype(np.float32)
  w = np.random.default_rng(25).random((3, 4)).astype(np.float32)
  kw_t = {"weight": torch.tensor(w)} if weighted else {}
  kw_l = {"weight": Tensor(w)} if weighted else {}
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy(x, torch.tensor(t), reduction=reduction, **kw_t),
                 lambda x: x.binary_cross_entropy(Tensor(t), reduction=reduction, **kw_l), low=0.05, high=0.95, atol=1e-5, grad_atol=1e-4)
  # the target gets a gradient too
  helper_test_op([(3, 4), (3, 4)], lambda x, y: F.binary_cross_entropy(x, y, reduction=reduction),
                 lambda x, y: x.binary_cross_entropy(y, reduction=reduction),
                 low=0.05, high=0.95, atol=1e-5, grad_atol=1e-4)


def test_binary_cross_entropy_extremes():
  x = np.array([0.0, 1.0, 0.5, 1e-30, 1.0 - 1e-7], dtype=np.float32)
  t = np.array([1.0, 0.0, 0.5, 1.0, 0.0], dtype=np.float32)
  helper_test_op(None, lambda x: F.binary_cross_entropy(x, torch.tensor(t), reduction="none"),
                 lambda x: x.binary_cross_entropy(Tensor(t), reduction="none"), inputs=[x], grad=False, atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", ["none", "weight", "pos_weight"])
def test_bce_with_logits(reduction, extra):
  t = np.random.default_rng(26).random((3, 4)).astype(np.float32)
  w = np.random.default_rng(27).random((4,)).astype(np.float32) + 0.5
  kw_t = {extra: torch.tensor(w)} if extra != "none" else {}
  kw_l = {extra: Tensor(w)} if extra != "none" else {}
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), reduction=reduction, **kw_t),
                 lambda x: x.binary_cross_entropy_with_logits(Tensor(t), reduction=reduction, **kw_l), low=-4, high=4, atol=1e-5, grad_atol=1e-4)
  helper_test_op([(3, 4), (3, 4)], lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), reduction=reduction, **kw_t),
                 lambda x, y: x.binary_cross_entropy_with_logits(y.sigmoid(), reduction=reduction, **kw_l), low=-4, high=4, atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(3, 4), (5,), (), (0, 2)], ids=str)
def test_mse_loss(shape, reduction):
  if shape == (0, 2) and reduction == "mean": pytest.skip("mean of nothing is nan with a torch warning")
  helper_test_op([shape, shape], lambda x, y: F.mse_loss(x, y, reduction=reduction), lambda x, y: x.mse_loss(y, reduction=reduction))


def test_loss_noncontiguous():
  tgt = np.array([1, 0, 3])
  helper_test_op([(4, 3)], lambda x: F.cross_entropy(x.T, torch.tensor(tgt)), lambda x: x.T.cross_entropy(Tensor(tgt)), atol=1e-5, grad_atol=1e-4)
  helper_test_op([(4, 3), (3, 4)], lambda x, y: F.mse_loss(x.T[:, ::2], y[:, 1::2]), lambda x, y: x.T[:, ::2].mse_loss(y[:, 1::2]))
  helper_test_op([(4, 3), (3, 4)], lambda x, y: F.binary_cross_entropy_with_logits(x.T, y.sigmoid()),
                 lambda x, y: x.T.binary_cross_entropy_with_logits(y.sigmoid()), atol=1e-5, grad_atol=1e-4)
