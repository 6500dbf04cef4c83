"""Contractions vs torch: matmul/dot/linear, conv2d, max/avg pooling."""
import pytest
import torch.nn.functional as F
from lazygrad import Tensor
from helpers import helper_test_op


# ============================================================ linear algebra

MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)),
                 ((5, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 5)), ((1, 3), (3, 1)), ((2, 0), (0, 3)), ((0, 3), (3, 2)),
                 ((4, 2, 3), (1, 3, 2)), ((2, 3), (2, 2, 3, 1))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
  helper_test_op(shapes, lambda a, b: a @ b)
  helper_test_op(shapes, lambda a, b: a.matmul(b))


def test_matmul_noncontiguous():
  helper_test_op([(4, 3), (5, 4)], lambda a, b: a.T @ b.T)
  helper_test_op([(6, 3), (4, 8)], lambda a, b: a[::2] @ b.flip(1)[1:, ::2], lambda a, b: a[::2] @ b[1:, ::-2])
  helper_test_op([(3,), (3, 4)], lambda a, b: a.unsqueeze(0).expand(5, 3) @ b)
  helper_test_op([(2, 3, 4), (2, 5, 4)], lambda a, b: a @ b.transpose(-1, -2))


@pytest.mark.parametrize("dtype", ["int32", "int64", "float16"])
def test_matmul_dtypes(dtype):
  helper_test_op([(3, 4), (4, 2)], lambda a, b: a @ b, dtype=dtype, low=-3, high=3, rtol=1e-2, atol=1e-2, grad_rtol=2e-2, grad_atol=2e-2)
  helper_test_op([(4,), (4,)], lambda a, b: a @ b, dtype=dtype, low=-3, high=3, rtol=1e-2, atol=1e-2, grad_rtol=2e-2, grad_atol=2e-2)


def test_matmul_errors():
  with pytest.raises(ValueError): Tensor.ones(2, 3) @ Tensor.ones(2, 3)
  with pytest.raises(ValueError): Tensor.ones(3) @ Tensor.ones(4)


def test_dot():
  helper_test_op([(5,), (5,)], lambda a, b: a.dot(b))
  helper_test_op([(6,), (3,)], lambda a, b: a[::2].dot(b.flip(0)))
  helper_test_op([(0,), (0,)], lambda a, b: a.dot(b))
  helper_test_op([(4,), (4,)], lambda a, b: a.dot(b), dtype="int32", low=-5, high=5)
  with pytest.raises(ValueError): Tensor.ones(2, 2).dot(Tensor.ones(2))


@pytest.mark.parametrize("x_shape", [(5,), (3, 5), (2, 3, 5), (0, 5)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(x_shape, bias):
  shapes = [x_shape, (4, 5)] + ([(4,)] if bias else [])
  helper_test_op(shapes, lambda x, w, *b: F.linear(x, w, *b), lambda x, w, *b: x.linear(w, *b))


# ============================================================ convolution and pooling

CONV_CASES = [
  # x shape, w shape, kwargs
  ((2, 3, 7, 7), (4, 3, 3, 3), {}),
  ((1, 2, 6, 5), (3, 2, 1, 1), {}),
  ((2, 3, 7, 7), (4, 3, 3, 3), {"stride": 2}),
  ((2, 3, 8, 7), (4, 3, 3, 2), {"stride": (2, 3)}),
  ((2, 3, 7, 7), (4, 3, 3, 3), {"padding": 1}),
  ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": (2, 0)}),
  ((1, 2, 9, 9), (3, 2, 3, 3), {"dilation": 2}),
  ((1, 2, 9, 8), (3, 2, 2, 3), {"dilation": (2, 1), "padding": 1, "stride": 2}),
  ((2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2}),
  ((2, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": 1}),
  ((1, 6, 7, 7), (3, 2, 3, 3), {"groups": 3, "stride": 2, "padding": 1, "dilation": 2}),
  ((1, 1, 5, 5), (1, 1, 5, 5), {}),
  ((1, 2, 4, 4), (2, 2, 3, 3), {"stride": 3}),
  ((2, 3, 5, 5), (4, 3, 3, 3), {"padding": "same"}),
  ((2, 3, 5, 5), (4, 3, 2, 2), {"padding": "valid"}),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs,ws,kw", CONV_CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CONV_CASES])
def test_conv2d(xs, ws, kw, bias):
  shapes = [xs, ws] + ([(ws[0],)] if bias else [])
  helper_test_op(shapes, lambda x, w, *b: F.conv2d(x, w, *b, **kw), lambda x, w, *b: x.conv2d(w, *b, **kw), rtol=1e-4, atol=1e-4,
                 grad_rtol=1e-3, grad_atol=1e-3)


def test_conv2d_noncontiguous_and_kw():
  helper_test_op([(3, 2, 6, 6), (4, 3, 3, 3), (4,)], lambda x, w, b: F.conv2d(x.permute(1, 0, 3, 2), w, bias=b, padding=1),
                 lambda x, w, b: x.permute(1, 0, 3, 2).conv2d(w, bias=b, padding=1), atol=1e-4, grad_atol=1e-3)
  helper_test_op([(2, 3, 6, 6), (4, 3, 3, 3)], lambda x, w: F.conv2d(x.flip(2), w), lambda x, w: x[:, :, ::-1].conv2d(w), atol=1e-4, grad_atol=1e-3)


def test_conv2d_errors():
  with pytest.raises(ValueError): Tensor.ones(1, 3, 5, 5).conv2d(Tensor.ones(2, 2, 3, 3))
  with pytest.raises(ValueError): Tensor.ones(1, 3, 2, 2).conv2d(Tensor.ones(2, 3, 3, 3))


POOL_CASES = [
  ((2, 3, 6, 6), {"kernel_size": 2}),
  ((2, 3, 7, 7), {"kernel_size": 3}),
  ((2, 3, 7, 7), {"kernel_size": 3, "stride": 2}),
  ((1, 2, 8, 7), {"kernel_size": (2, 3), "stride": (2, 1)}),
  ((1, 2, 6, 6), {"kernel_size": 3, "stride": 1, "padding": 1}),
  ((1, 2, 7, 6), {"kernel_size": (3, 2), "stride": 2, "padding": (1, 0)}),
  ((3, 5, 5), {"kernel_size": 2, "stride": 1}),
  ((1, 1, 4, 4), {"kernel_size": 4}),
  ((1, 1, 5, 5), {"kernel_size": 2, "stride": 3}),
]


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("xs,kw", POOL_CASES, ids=[f"{c[0]}-{c[1]}" for c in POOL_CASES])
def test_pool2d(op, xs, kw):
  helper_test_op([xs], lambda x: getattr(F, op)(x, **kw), lambda x: getattr(x, op)(**kw))


def test_pool2d_extra():
  helper_test_op([(1, 2, 6, 6)], lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                 lambda x: x.avg_pool2d(3, 2, 1, count_include_pad=False))
  helper_test_op([(1, 2, 7, 7)], lambda x: F.max_pool2d(x, 2, 1, dilation=2), lambda x: x.max_pool2d(2, 1, dilation=2))
  helper_test_op([(2, 1, 6, 6)], lambda x: F.max_pool2d(x.permute(1, 0, 3, 2).flip(-1), 2), lambda x: x.permute(1, 0, 3, 2)[..., ::-1].max_pool2d(2))
  # all-negative input with padding: padded cells must not win
  helper_test_op([(1, 1, 4, 4)], lambda x: F.max_pool2d(x, 3, 1, 1), lambda x: x.max_pool2d(3, 1, 1), low=-3, high=-1)
