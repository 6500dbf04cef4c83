"""Edge cases and regressions vs torch: ties, boundaries, mixed dtypes, values naive compositions get wrong."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor, dtypes
from helpers import helper_test_op, compare


# ============================================================ edge cases: ties, boundaries, mixed dtypes

def test_maximum_minimum_ties_split_gradient():
  a = np.array([1.0, 2.0, 3.0, -1.0], dtype=np.float32)
  b = np.array([1.0, 0.0, 3.0, -1.0], dtype=np.float32)
  helper_test_op(None, torch.maximum, lambda x, y: x.maximum(y), inputs=[a, b])
  helper_test_op(None, torch.minimum, lambda x, y: x.minimum(y), inputs=[a, b])


def test_clamp_hardtanh_boundaries():
  a = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, -2.0], dtype=np.float32)
  helper_test_op(None, lambda x: x.clamp(-0.5, 0.5), inputs=[a])
  helper_test_op(None, lambda x: x.clamp(min=0.0), inputs=[a])
  helper_test_op(None, F.hardtanh, lambda x: x.hardtanh(), inputs=[a])
  helper_test_op(None, lambda x: F.hardtanh(x, -0.5, 0.5), lambda x: x.hardtanh(-0.5, 0.5), inputs=[a])


def test_activation_grads_at_zero():
  a = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
  for tf, lf in ((F.leaky_relu, lambda x: x.leaky_relu()), (F.elu, lambda x: x.elu()), (torch.sigmoid, lambda x: x.sigmoid()),
                 (F.softplus, lambda x: x.softplus()), (F.silu, lambda x: x.silu()), (F.gelu, lambda x: x.gelu()),
                 (torch.tanh, lambda x: x.tanh()), (torch.sign, lambda x: x.sign()), (F.logsigmoid, lambda x: x.logsigmoid())):
    helper_test_op(None, tf, lf, inputs=[a])


def test_mixed_dtype_grads():
  a = np.array([[1.5, -2.0], [0.5, 3.0]], dtype=np.float32)
  b = np.array([[2, 3], [-1, 4]], dtype=np.int32)
  for fn in (lambda x, y: (x * y).sum(), lambda x, y: (x / y).sum(), lambda x, y: (y - x).exp().sum(),
             lambda x, y: (x ** y).sum(), lambda x, y: x.maximum(y).sum()):
    tx = torch.tensor(a, requires_grad=True)
    lx = Tensor(a, requires_grad=True)
    tout, lout = fn(tx, torch.tensor(b)), fn(lx, Tensor(b))
    assert lout.dtype == dtypes.from_any(tout.dtype)
    compare(lout.numpy(), tout.detach().numpy(), 1e-5, 1e-5)
    tout.backward(); lout.backward()
    compare(lx.grad.numpy(), tx.grad.numpy(), 1e-5, 1e-5, "grad")


def test_float16_float32_mixed_grads():
  a16 = np.array([1.5, -2.0, 0.25], dtype=np.float16)
  b32 = np.array([0.5, 3.0, -1.0], dtype=np.float32)
  ta, tb = torch.tensor(a16, requires_grad=True), torch.tensor(b32, requires_grad=True)
  la, lb = Tensor(a16, requires_grad=True), Tensor(b32, requires_grad=True)
  tout, lout = (ta * tb + ta.float().exp()).sum(), (la * lb + la.float().exp()).sum()
  assert lout.dtype == dtypes.float32
  tout.backward(); lout.backward()
  assert la.grad.dtype == dtypes.float16 and lb.grad.dtype == dtypes.float32
  compare(la.grad.numpy(), ta.grad.numpy(), 1e-2, 1e-2)
  compare(lb.grad.numpy(), tb.grad.numpy(), 1e-5, 1e-5)


def test_sum_mean_dtype_kw():
  helper_test_op(None, lambda x: x.sum(1, dtype=torch.float32) if isinstance(x, torch.Tensor) else x.sum(1, dtype=dtypes.float32),
                 inputs=[np.arange(6, dtype=np.int32).reshape(2, 3)])
  helper_test_op([(2, 3)], lambda x: x.sum(dtype=torch.float32) if isinstance(x, torch.Tensor) else x.sum(dtype=dtypes.float32), dtype="float16")
  helper_test_op([(2, 3)], lambda x: x.mean(0, dtype=torch.float32) if isinstance(x, torch.Tensor) else x.mean(0, dtype=dtypes.float32),
                 dtype="float16")


def test_softmax_zero_size_and_one():
  helper_test_op([(0, 3)], lambda x: x.softmax(1))
  helper_test_op([(0, 3)], lambda x: x.log_softmax(-1))
  helper_test_op([(3, 1)], lambda x: x.softmax(1))
  helper_test_op([(3, 1)], lambda x: x.log_softmax(1))


def test_var_std_degenerate():
  helper_test_op([(1, 3)], lambda x: x.var(0), grad=False)
  helper_test_op([(1, 3)], lambda x: x.std(0, correction=0))
  helper_test_op([(3, 4)], lambda x: (x * 0 + 1).std(1), grad=False)


@pytest.mark.parametrize("dtype", ["float16"])
def test_nn_float16(dtype):
  kw = dict(dtype=dtype, rtol=2e-2, atol=2e-2, grad_rtol=5e-2, grad_atol=5e-2)
  helper_test_op([(2, 5), (5,), (5,)], lambda x, w, b: F.layer_norm(x, (5,), w, b), lambda x, w, b: x.layer_norm(5, w, b), **kw)
  helper_test_op([(2, 3, 5, 5), (4, 3, 3, 3)], lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: x.conv2d(w, padding=1), **kw)
  helper_test_op([(2, 5)], lambda x: F.cross_entropy(x, torch.tensor([1, 4])), lambda x: x.cross_entropy(Tensor([1, 4])), **kw)
  helper_test_op([(1, 2, 4, 4)], lambda x: F.max_pool2d(x, 2), lambda x: x.max_pool2d(2), **kw)
  helper_test_op([(1, 2, 4, 4)], lambda x: F.avg_pool2d(x, 2), lambda x: x.avg_pool2d(2), **kw)


def test_bce_broadcast_weight():
  t = np.random.default_rng(28).random((3, 4)).astype(np.float32)
  w = np.array([0.5, 1.0, 2.0, 0.1], dtype=np.float32)
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy(x, torch.tensor(t), weight=torch.tensor(w)),
                 lambda x: x.binary_cross_entropy(Tensor(t), weight=Tensor(w)), low=0.1, high=0.9, atol=1e-5, grad_atol=1e-4)
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), weight=torch.tensor(w)),
                 lambda x: x.binary_cross_entropy_with_logits(Tensor(t), weight=Tensor(w)), atol=1e-5, grad_atol=1e-4)


def test_cross_entropy_probs_weight():
  p = np.random.default_rng(29).random((3, 4)).astype(np.float32)
  w = np.array([0.5, 1.0, 2.0, 0.1], dtype=np.float32)
  for reduction in ("mean", "sum", "none"):
    helper_test_op([(3, 4)], lambda x: F.cross_entropy(x, torch.tensor(p), weight=torch.tensor(w), reduction=reduction, label_smoothing=0.1),
                   lambda x: x.cross_entropy(Tensor(p), weight=Tensor(w), reduction=reduction, label_smoothing=0.1), atol=1e-5, grad_atol=1e-4)


def test_masked_fill_tensor_value_and_where_grads():
  m = np.array([[True, False, True], [False, False, True]])
  helper_test_op([(2, 3), ()], lambda x, v: x.masked_fill(torch.tensor(m), v), lambda x, v: x.masked_fill(Tensor(m), v))
  helper_test_op([(2, 3)], lambda x: x.masked_fill(torch.tensor(m[0]), 1.5), lambda x: x.masked_fill(Tensor(m[0]), 1.5))


def test_one_hot_0d_and_int_ops_on_result():
  helper_test_op(None, lambda x: F.one_hot(x, 4) if isinstance(x, torch.Tensor) else x.one_hot(4), inputs=[np.array(2)])
  helper_test_op(None, lambda x: (F.one_hot(x, 3) if isinstance(x, torch.Tensor) else x.one_hot(3)).sum(0), inputs=[np.array([0, 2, 2, 1])])


def test_repeat_0d_and_expand_grads():
  helper_test_op([()], lambda x: x.repeat(2, 3))
  helper_test_op([(3, 1)], lambda x: x.expand(3, 4) * x.T.expand(3, 3).sum(1, keepdim=True))


def test_sdpa_float_mask_broadcast():
  m = np.random.default_rng(30).uniform(-1, 1, size=(2, 1, 3, 4)).astype(np.float32)
  helper_test_op([(2, 2, 3, 5), (2, 2, 4, 5), (2, 2, 4, 6)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(m)),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, attn_mask=Tensor(m)), atol=1e-5, grad_atol=1e-4)
  # causal with L != S: torch aligns the mask top-left
  helper_test_op([(1, 2, 5), (1, 4, 5), (1, 4, 3)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True), atol=1e-5, grad_atol=1e-4)


# ============================================================ regressions: values torch gets right that naive compositions do not

def test_float_floordiv_exact():
  a = np.array([1.0, -1.0, 0.3, 7.5, -7.5, 5.0, -5.0, 0.0, 3.0], dtype=np.float32)
  b = np.array([0.1, 0.1, 0.1, 2.0, 2.0, 0.0, 0.0, 0.0, np.inf], dtype=np.float32)
  helper_test_op(None, lambda x, y: x // y, inputs=[a, b], grad=False)
  helper_test_op(None, lambda x: x // 0.1, inputs=[a], grad=False)


def test_int_pow_negative_float_exponent():
  helper_test_op(None, lambda x: x ** -1.0, inputs=[np.array([1, 2, 4], dtype=np.int64)])
  helper_test_op(None, lambda x: x ** -2.0, inputs=[np.array([1, 2, 4], dtype=np.int32)])


def test_cos_large_arguments():
  a = np.array([1e4, -1e4, 12345.678, 1e5, 4096.0, 1.5707964, 3.1415927, 0.0], dtype=np.float32)
  helper_test_op(None, torch.cos, lambda x: x.cos(), inputs=[a], atol=1e-6, rtol=1e-4)
  helper_test_op(None, torch.sin, lambda x: x.sin(), inputs=[a], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_min_at_int_extremes(dtype):
  info = np.iinfo(dtype)
  a = np.array([[info.min, 5, info.max], [0, info.max, info.min]], dtype=dtype)
  b = np.array([info.max, info.min, 0], dtype=dtype)
  helper_test_op(None, lambda x: x.amin(1), inputs=[a])
  helper_test_op(None, lambda x: x.min(), inputs=[a])
  helper_test_op(None, lambda x: x.argmin(1), inputs=[a])
  helper_test_op(None, lambda x: x.amax(0), inputs=[a])
  helper_test_op(None, lambda x, y: x.minimum(y) if isinstance(x, Tensor) else torch.minimum(x, y), inputs=[a, b])
  helper_test_op(None, lambda x: x.clamp(max=3), inputs=[a])


def test_int_scalar_wraps_into_dtype():
  u = np.array([0, 255, 3], dtype=np.uint8)
  helper_test_op(None, lambda x: x > -1, inputs=[u])
  helper_test_op(None, lambda x: ~x, inputs=[u])
  helper_test_op(None, lambda x: ~x, inputs=[np.array([0, -128, 127], dtype=np.int8)])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cumsum_non_finite(dtype):
  a = np.array([[1.0, np.inf, 2.0, -np.inf, 3.0], [1.0, -np.inf, 2.0, 1.0, np.nan], [1.0, 2.0, np.nan, 4.0, 5.0]], dtype=dtype)
  helper_test_op(None, lambda x: x.cumsum(1), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.cumsum(0), inputs=[a], grad=False)


def test_half_mean_var_layer_norm_accumulate_in_float32():
  a = (np.full((2, 100), 1000.0) + np.arange(100)).astype(np.float16)
  kw = dict(rtol=1e-3, atol=1e-3, grad=False)
  helper_test_op(None, lambda x: x.mean(1), inputs=[a], **kw)
  helper_test_op(None, lambda x: x.mean(), inputs=[a], **kw)
  helper_test_op(None, lambda x: x.var(1), inputs=[a], rtol=1e-3, atol=1e-1, grad=False)
  helper_test_op(None, lambda x: x.std(), inputs=[a], rtol=1e-3, atol=1e-3, grad=False)
  helper_test_op(None, lambda x: F.layer_norm(x, (100,)), lambda x: x.layer_norm(100), inputs=[a], rtol=1e-2, atol=2e-3, grad=False)
  helper_test_op([(2, 100), (100,), (100,)], lambda x, w, b: F.layer_norm(x * 100 + 1000, (100,), w, b),
                 lambda x, w, b: (x * 100 + 1000).layer_norm(100, w, b), dtype="float16", rtol=1e-2, atol=1e-2, grad_rtol=5e-2, grad_atol=5e-2)


def test_pad_value_takes_tensor_dtype():
  helper_test_op(None, lambda x: F.pad(x, (1, 2), value=-3.5) if isinstance(x, torch.Tensor) else x.pad((1, 2), value=-3.5),
                 inputs=[np.arange(4, dtype=np.int32)])
  helper_test_op([(3,)], lambda x: F.pad(x, (1, 1), value=2.5) if isinstance(x, torch.Tensor) else x.pad((1, 1), value=2.5), dtype="float16")


def test_relu_propagates_nan():
  a = np.array([np.nan, -1.0, 0.0, 2.0], dtype=np.float32)
  helper_test_op(None, torch.relu, lambda x: x.relu(), inputs=[a], grad=False)
  helper_test_op(None, F.leaky_relu, lambda x: x.leaky_relu(), inputs=[a], grad=False)
  helper_test_op(None, F.elu, lambda x: x.elu(), inputs=[a], grad=False)
  helper_test_op(None, torch.sigmoid, lambda x: x.sigmoid(), inputs=[a], grad=False)


def test_std_zero_variance_gradient():
  helper_test_op(None, lambda x: x.std(1), inputs=[np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], dtype=np.float32)])
  helper_test_op(None, lambda x: x.std(), inputs=[np.full((2, 2), 3.0, dtype=np.float32)])


def test_amax_ties_split_gradient_as_torch():
  # torch's amax/amin and max()/min() without dim share the gradient among ties (only max(dim) picks one index)
  a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 0.0]], dtype=np.float32)
  for fn in (lambda x: x.amax(1), lambda x: x.amin(1), lambda x: x.amax(), lambda x: x.max(), lambda x: x.min(), lambda x: x.amax((0, 1)),
             lambda x: x.amax(0, keepdim=True)):
    helper_test_op(None, fn, inputs=[a])
