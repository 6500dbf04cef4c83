"""lazygrad.nn.functional against torch.nn.functional: values and gradients (cpu and interp), small shapes.
The same call is written once for both: `fn(F)` runs with F = torch.nn.functional or lazygrad.nn.functional."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import lazygrad
import lazygrad.nn.functional as LF
from lazygrad import Tensor
from helpers import helper_test_op, make_inputs


def same(shapes, fn, **kw):
  """Run fn(F, *inputs) with torch's F and lazygrad's F and compare values and gradients."""
  return helper_test_op(shapes, lambda *a: fn(TF, *a), lambda *a: fn(LF, *a), **kw)


ACTIVATIONS = [
  ("relu", lambda F, x: F.relu(x)), ("relu6", lambda F, x: F.relu6(x * 4)), ("elu", lambda F, x: F.elu(x, alpha=0.7)),
  ("selu", lambda F, x: F.selu(x)), ("celu", lambda F, x: F.celu(x, alpha=1.5)), ("leaky_relu", lambda F, x: F.leaky_relu(x, 0.2)),
  ("gelu", lambda F, x: F.gelu(x)), ("gelu_tanh", lambda F, x: F.gelu(x, approximate="tanh")), ("silu", lambda F, x: F.silu(x)),
  ("mish", lambda F, x: F.mish(x)), ("hardswish", lambda F, x: F.hardswish(x * 3)), ("hardsigmoid", lambda F, x: F.hardsigmoid(x * 3)),
  ("hardtanh", lambda F, x: F.hardtanh(x, -0.5, 1.0)), ("hardshrink", lambda F, x: F.hardshrink(x, 0.3)),
  ("softshrink", lambda F, x: F.softshrink(x, 0.3)), ("tanhshrink", lambda F, x: F.tanhshrink(x)), ("softsign", lambda F, x: F.softsign(x)),
  ("softplus", lambda F, x: F.softplus(x, beta=2.0, threshold=3.0)), ("threshold", lambda F, x: F.threshold(x, 0.1, -2.0)),
  ("logsigmoid", lambda F, x: F.logsigmoid(x)), ("sigmoid", lambda F, x: F.sigmoid(x)), ("tanh", lambda F, x: F.tanh(x)),
  ("softmax", lambda F, x: F.softmax(x, dim=1)), ("softmin", lambda F, x: F.softmin(x, dim=-1)),
  ("log_softmax", lambda F, x: F.log_softmax(x, 0)), ("glu", lambda F, x: F.glu(x, dim=1)),
  ("rrelu_eval", lambda F, x: F.rrelu(x)), ("normalize", lambda F, x: F.normalize(x, dim=1)),
  ("normalize_p1", lambda F, x: F.normalize(x, p=1.0, dim=0)), ("dropout_eval", lambda F, x: F.dropout(x, 0.5, training=False)),
  ("dropout2d_eval", lambda F, x: F.dropout2d(x.unsqueeze(0), 0.5, training=False)),
]


@pytest.mark.parametrize("name,fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation(name, fn):
  same([(3, 4)], fn)


def test_activation_transposed_and_empty():
  same([(4, 3)], lambda F, x: F.hardswish(x.T * 3))
  same([(0, 3)], lambda F, x: F.selu(x))


def test_softmax_dtype_and_implicit_dim():
  same([(3, 4)], lambda F, x: F.softmax(x, dim=-1, dtype=torch.float64 if F is TF else lazygrad.float64), check_dtype=True)
  with pytest.warns(UserWarning):
    same([(2, 3, 4)], lambda F, x: F.log_softmax(x))


def test_prelu():
  same([(2, 3, 4), (3,)], lambda F, x, w: F.prelu(x, w))
  same([(2, 3), (1,)], lambda F, x, w: F.prelu(x, w))


def test_linear_bilinear():
  same([(2, 5, 4), (3, 4), (3,)], lambda F, x, w, b: F.linear(x, w, b))
  same([(2, 4), (2, 3), (5, 4, 3), (5,)], lambda F, a, b, w, bias: F.bilinear(a, b, w, bias))


def test_embedding_padding_idx_and_one_hot():
  idx = np.array([[0, 2, 1], [2, 2, 0]])
  w = make_inputs([(4, 3)])[0]
  for F, T in ((TF, torch.tensor), (LF, Tensor)):
    wt = T(w, requires_grad=True)
    out = F.embedding(T(idx), wt, padding_idx=2)
    (out * T(np.arange(18, dtype=np.float32).reshape(2, 3, 3))).sum().backward()
    if F is TF: ref, gref = out.detach().numpy(), wt.grad.numpy()
  np.testing.assert_allclose(out.numpy(), ref)
  np.testing.assert_allclose(wt.grad.numpy(), gref)
  np.testing.assert_array_equal(LF.one_hot(Tensor(idx), 5).numpy(), TF.one_hot(torch.tensor(idx), 5).numpy())


def test_distances():
  same([(3, 5), (3, 5)], lambda F, a, b: F.cosine_similarity(a, b, dim=1))
  same([(3, 5), (1, 5)], lambda F, a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-3))
  same([(3, 5), (3, 5)], lambda F, a, b: F.pairwise_distance(a, b))
  same([(3, 5), (3, 5)], lambda F, a, b: F.pairwise_distance(a, b, p=1.0, keepdim=True))
  same([(4, 3)], lambda F, x: F.pdist(x))


NORMS = [
  ("layer_norm", [(2, 3, 4), (4,), (4,)], lambda F, x, w, b: F.layer_norm(x, (4,), w, b)),
  ("group_norm", [(2, 6, 3), (6,), (6,)], lambda F, x, w, b: F.group_norm(x, 3, w, b)),
  ("group_norm_noaffine", [(2, 4, 2, 3)], lambda F, x: F.group_norm(x, 2)),
  ("instance_norm", [(2, 3, 5), (3,), (3,)], lambda F, x, w, b: F.instance_norm(x, weight=w, bias=b)),
  ("instance_norm_2d", [(2, 3, 2, 3)], lambda F, x: F.instance_norm(x)),
  ("rms_norm", [(2, 3, 4), (4,)], lambda F, x, w: F.rms_norm(x, (4,), w)),
  ("batch_norm_train", [(4, 3, 2), (3,), (3,)], lambda F, x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
  ("local_response_norm", [(2, 5, 3, 2)], lambda F, x: F.local_response_norm(x, 3, alpha=0.1)),
]


@pytest.mark.parametrize("name,shapes,fn", NORMS, ids=[n[0] for n in NORMS])
def test_norm(name, shapes, fn):
  same(shapes, fn, atol=1e-4, rtol=1e-4)


def test_instance_norm_running_stats_update():
  x = make_inputs([(2, 3, 5)])[0]
  trm, trv = torch.zeros(3), torch.ones(3)
  lrm, lrv = Tensor.zeros(3).contiguous(), Tensor.ones(3).contiguous()
  tout = TF.instance_norm(torch.tensor(x), trm, trv, momentum=0.2)
  lout = LF.instance_norm(Tensor(x), lrm, lrv, momentum=0.2)
  np.testing.assert_allclose(lout.numpy(), tout.numpy(), atol=1e-5)
  np.testing.assert_allclose(lrm.numpy(), trm.numpy(), atol=1e-6)
  np.testing.assert_allclose(lrv.numpy(), trv.numpy(), atol=1e-5)


def test_sdpa_gqa_and_mask():
  same([(1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 8)], lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
  same([(2, 3, 4), (2, 3, 4), (2, 3, 4)], lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3))


def test_dropout_training_statistics():
  x = Tensor.ones(64, 32)
  y = LF.dropout2d(x.reshape(64, 32, 1, 1), 0.5, training=True).numpy().reshape(64, 32)
  assert set(np.unique(y)) <= {0.0, 2.0} and 0.3 < (y == 0).mean() < 0.7
  z = LF.alpha_dropout(Tensor.randn(4000), 0.2, training=True).numpy()
  assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1
  f = LF.feature_alpha_dropout(Tensor.randn(500, 8, 4), 0.2, training=True).numpy()
  assert abs(f.mean()) < 0.1 and abs(f.std() - 1) < 0.1 and (np.ptp(f[(f == f[:, :, :1]).all(-1)], -1) == 0).all()
  assert LF.feature_alpha_dropout(x, 0.5).numpy().min() == 1.0   # training=False by default, as torch
  g = LF.gumbel_softmax(Tensor.zeros(5, 4), hard=True).numpy()
  np.testing.assert_array_equal(g.sum(-1), np.ones(5))
