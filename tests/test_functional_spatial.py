"""lazygrad.nn.functional's spatial ops against torch: convolutions (incl. transposed), pooling with ceil_mode and
return_indices, adaptive pooling, interpolate, pad modes, unfold/fold, shuffles. Values and gradients, small shapes."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import lazygrad.nn.functional as LF
from lazygrad import Tensor
from helpers import helper_test_op, make_inputs


def same(shapes, fn, **kw):
  """fn(F, *inputs) with torch's and lazygrad's F: values and gradients."""
  return helper_test_op(shapes, lambda *a: fn(TF, *a), lambda *a: fn(LF, *a), **kw)


CONVS = [
  ("conv1d", [(2, 4, 7), (6, 2, 3), (6,)], lambda F, x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=2)),
  ("conv3d", [(1, 2, 4, 4, 3), (3, 2, 2, 2, 2)], lambda F, x, w: F.conv3d(x, w, padding=(1, 0, 1))),
  ("conv_transpose1d", [(2, 4, 5), (4, 3, 3), (3,)], lambda F, x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1)),
  ("conv_transpose2d", [(1, 2, 3, 4), (2, 3, 3, 2)], lambda F, x, w: F.conv_transpose2d(x, w, stride=(2, 1), padding=(1, 0))),
  ("conv_transpose2d_groups_dil", [(2, 4, 3, 3), (4, 1, 2, 3), (2,)],
   lambda F, x, w, b: F.conv_transpose2d(x, w, b, stride=2, groups=2, dilation=(2, 1), output_padding=1)),
  ("conv_transpose2d_big_pad", [(1, 1, 4, 4), (1, 1, 2, 2)], lambda F, x, w: F.conv_transpose2d(x, w, padding=1)),
  ("conv_transpose3d", [(1, 2, 2, 3, 2), (2, 2, 2, 2, 2)], lambda F, x, w: F.conv_transpose3d(x, w, stride=2)),
]


@pytest.mark.parametrize("name,shapes,fn", CONVS, ids=[c[0] for c in CONVS])
def test_conv(name, shapes, fn):
  same(shapes, fn, atol=1e-4, rtol=1e-4)


POOLS = [
  ("max2d_ceil", [(2, 2, 5, 6)], lambda F, x: F.max_pool2d(x, 2, ceil_mode=True)),
  ("max2d_ceil_stride_pad", [(1, 2, 7, 5)], lambda F, x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)),
  ("max2d_dilation", [(1, 1, 7, 7)], lambda F, x: F.max_pool2d(x, 2, stride=1, dilation=2)),
  ("max1d", [(2, 3, 7)], lambda F, x: F.max_pool1d(x, 3, stride=2, ceil_mode=True)),
  ("max3d", [(1, 1, 4, 4, 5)], lambda F, x: F.max_pool3d(x, 2)),
  ("avg2d_ceil", [(1, 2, 5, 5)], lambda F, x: F.avg_pool2d(x, 2, ceil_mode=True)),
  ("avg2d_ceil_pad", [(1, 2, 6, 5)], lambda F, x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)),
  ("avg2d_ceil_pad_exclude", [(1, 2, 6, 5)], lambda F, x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
  ("avg2d_divisor", [(1, 1, 4, 4)], lambda F, x: F.avg_pool2d(x, 2, divisor_override=3)),
  ("avg1d", [(2, 3, 7)], lambda F, x: F.avg_pool1d(x, 3, stride=2, padding=1)),
  ("avg3d", [(1, 2, 4, 4, 3)], lambda F, x: F.avg_pool3d(x, (2, 2, 1))),
  ("lp2d", [(1, 2, 4, 4)], lambda F, x: F.lp_pool2d(x.abs() + 0.1, 2.0, 2)),
  ("lp1d", [(1, 2, 6)], lambda F, x: F.lp_pool1d(x.abs() + 0.1, 3, 2)),
  ("adaptive_avg2d", [(2, 2, 7, 5)], lambda F, x: F.adaptive_avg_pool2d(x, (3, 2))),
  ("adaptive_avg2d_none", [(1, 2, 7, 5)], lambda F, x: F.adaptive_avg_pool2d(x, (None, 3))),
  ("adaptive_avg1d", [(2, 3, 10)], lambda F, x: F.adaptive_avg_pool1d(x, 4)),
  ("adaptive_avg3d", [(1, 1, 5, 4, 3)], lambda F, x: F.adaptive_avg_pool3d(x, 2)),
  ("adaptive_max2d", [(2, 2, 7, 5)], lambda F, x: F.adaptive_max_pool2d(x, (3, 2))),
  ("adaptive_max1d", [(2, 3, 10)], lambda F, x: F.adaptive_max_pool1d(x, 4)),
  ("adaptive_max3d", [(1, 2, 4, 3, 5)], lambda F, x: F.adaptive_max_pool3d(x, (2, 2, 3))),
  ("lp3d", [(1, 1, 4, 4, 2)], lambda F, x: F.lp_pool3d(x.abs() + 0.1, 2.0, 2)),
]


@pytest.mark.parametrize("name,shapes,fn", POOLS, ids=[p[0] for p in POOLS])
def test_pool(name, shapes, fn):
  same(shapes, fn)


@pytest.mark.parametrize("fn", [
  lambda F, x: F.max_pool2d(x, 2, return_indices=True),
  lambda F, x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, return_indices=True),
  lambda F, x: F.max_pool1d(x.flatten(2), 4, return_indices=True),
  lambda F, x: F.adaptive_max_pool2d(x, (2, 3), return_indices=True),
], ids=["2d", "2d_ceil_pad", "1d", "adaptive2d"])
def test_max_pool_return_indices_and_first_max_gradient(fn):
  # ties (rounded inputs) check that the gradient goes to the first maximum, as torch's
  x = np.round(make_inputs([(2, 2, 5, 6)])[0])
  tx, lx = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
  (tv, ti), (lv, li) = fn(TF, tx), fn(LF, lx)
  np.testing.assert_allclose(lv.numpy(), tv.detach().numpy())
  np.testing.assert_array_equal(li.numpy(), ti.numpy())
  assert li.dtype.name == "int64"
  proj = np.random.default_rng(3).standard_normal(tv.shape).astype(np.float32)
  (tv * torch.tensor(proj)).sum().backward()
  (lv * Tensor(proj)).sum().backward()
  np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), atol=1e-5)


INTERP = [
  ("nearest_size", [(1, 2, 3, 4)], lambda F, x: F.interpolate(x, size=(5, 7))),
  ("nearest_scale", [(1, 2, 3, 4)], lambda F, x: F.interpolate(x, scale_factor=1.7)),
  ("nearest_int_scale", [(1, 2, 3, 4)], lambda F, x: F.interpolate(x, scale_factor=(2, 3))),
  ("nearest_int_size", [(2, 1, 3, 4)], lambda F, x: F.interpolate(x, size=(6, 4))),
  ("nearest_down", [(1, 1, 7, 5)], lambda F, x: F.interpolate(x, size=(3, 2))),
  ("nearest_exact", [(1, 2, 3, 4)], lambda F, x: F.interpolate(x, size=(5, 7), mode="nearest-exact")),
  ("bilinear", [(1, 2, 3, 4)], lambda F, x: F.interpolate(x, size=(5, 7), mode="bilinear")),
  ("bilinear_align", [(2, 1, 3, 4)], lambda F, x: F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=True)),
  ("bilinear_scale", [(1, 2, 4, 4)], lambda F, x: F.interpolate(x, scale_factor=2.5, mode="bilinear")),
  ("bilinear_down", [(1, 1, 7, 6)], lambda F, x: F.interpolate(x, size=(3, 4), mode="bilinear")),
  ("linear", [(2, 3, 5)], lambda F, x: F.interpolate(x, size=8, mode="linear")),
  ("trilinear", [(1, 1, 2, 3, 2)], lambda F, x: F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=True)),
  ("area", [(1, 2, 6, 5)], lambda F, x: F.interpolate(x, size=(3, 2), mode="area")),
  ("upsample_bilinear", [(1, 2, 3, 3)], lambda F, x: F.upsample_bilinear(x, scale_factor=2)),
]


@pytest.mark.parametrize("name,shapes,fn", INTERP, ids=[i[0] for i in INTERP])
def test_interpolate(name, shapes, fn):
  same(shapes, fn)


PADS = [
  ("constant", [(2, 3, 4)], lambda F, x: F.pad(x, (1, 2, 0, 1), value=1.5)),
  ("constant_crop", [(2, 3, 4)], lambda F, x: F.pad(x, (-1, 2))),
  ("reflect", [(2, 3, 4)], lambda F, x: F.pad(x, (3, 2), mode="reflect")),
  ("reflect2d", [(1, 2, 4, 5)], lambda F, x: F.pad(x, (2, 1, 3, 0), mode="reflect")),
  ("replicate2d", [(1, 2, 3, 4)], lambda F, x: F.pad(x, (2, 1, 3, 2), mode="replicate")),
  ("circular2d", [(1, 2, 3, 4)], lambda F, x: F.pad(x, (2, 4, 3, 1), mode="circular")),
  ("replicate3d", [(1, 1, 2, 3, 2)], lambda F, x: F.pad(x, (1, 1, 0, 2, 1, 0), mode="replicate")),
]


@pytest.mark.parametrize("name,shapes,fn", PADS, ids=[p[0] for p in PADS])
def test_pad(name, shapes, fn):
  same(shapes, fn)


def test_pad_errors_name_the_shape():
  with pytest.raises(ValueError, match=r"reflect padding \(4, 0\) must be smaller than the dim size 4"):
    LF.pad(Tensor.zeros(1, 2, 4), (4, 0), mode="reflect")
  with pytest.raises(ValueError, match="mode must be"):
    LF.pad(Tensor.zeros(1, 2, 4), (1, 1), mode="wrap")


FOLDS = [
  ("unfold", [(2, 3, 5, 6)], lambda F, x: F.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1))),
  ("unfold_unbatched", [(3, 4, 4)], lambda F, x: F.unfold(x, 2)),
  ("fold", [(2, 12, 9)], lambda F, x: F.fold(x, (4, 5), (2, 3), stride=1)),
  ("fold_stride_pad_dil", [(1, 8, 9)], lambda F, x: F.fold(x, (5, 5), 2, dilation=2, padding=1, stride=2)),
  ("pixel_shuffle", [(2, 8, 2, 3)], lambda F, x: F.pixel_shuffle(x, 2)),
  ("pixel_unshuffle", [(2, 2, 4, 6)], lambda F, x: F.pixel_unshuffle(x, 2)),
  ("channel_shuffle", [(2, 6, 2)], lambda F, x: F.channel_shuffle(x, 3)),
]


@pytest.mark.parametrize("name,shapes,fn", FOLDS, ids=[f[0] for f in FOLDS])
def test_fold(name, shapes, fn):
  same(shapes, fn)


def test_fold_inverts_unfold_counts():
  x = make_inputs([(1, 2, 5, 5)])[0]
  same([(1, 2, 5, 5)], lambda F, t: F.fold(F.unfold(t, 3, padding=1), (5, 5), 3, padding=1), inputs=[x])


@pytest.mark.parametrize("fn", [
  lambda F, x: F.max_pool2d(x.transpose(-1, -2), 2, ceil_mode=True),
  lambda F, x: F.interpolate(x[:, :, ::2], size=(4, 4), mode="bilinear"),
  lambda F, x: F.pad(x.transpose(-1, -2), (1, 1, 2, 0), mode="reflect"),
  lambda F, x: F.conv_transpose2d(x.transpose(0, 1)[:, :2], x[:2, :1, :2, :2].transpose(-1, -2), stride=2),
  lambda F, x: F.adaptive_avg_pool2d(x.transpose(-1, -2), 3),
], ids=["max_pool", "interpolate", "pad", "conv_transpose", "adaptive_avg"])
def test_non_contiguous_inputs(fn):
  same([(3, 3, 5, 6)], fn)


@pytest.mark.parametrize("fn", [
  lambda F, x: F.interpolate(x, scale_factor=2, mode="bilinear"), lambda F, x: F.avg_pool2d(x, 2, ceil_mode=True),
  lambda F, x: F.max_pool2d(x, 2, return_indices=True)[0], lambda F, x: F.pad(x, (1, 2, 0, 1), mode="replicate"),
  lambda F, x: F.group_norm(x, 1), lambda F, x: F.adaptive_avg_pool2d(x, 2),
], ids=["interpolate", "avg_pool", "max_pool_indices", "pad", "group_norm", "adaptive_avg"])
def test_float16_keeps_dtype(fn):
  same([(1, 2, 3, 5)], fn, dtype="float16")


ERRORS = [
  (lambda: LF.conv_transpose2d(Tensor.zeros(1, 3, 4, 4), Tensor.zeros(2, 3, 3, 3)), r"input \(1, 3, 4, 4\) has 3 channels, weight \(2, 3, 3, 3\)"),
  (lambda: LF.conv_transpose1d(Tensor.zeros(1, 2, 4), Tensor.zeros(2, 3, 3), stride=2, output_padding=2), "output_padding"),
  (lambda: LF.interpolate(Tensor.zeros(1, 1, 4, 4), size=2, scale_factor=2), "exactly one of size and scale_factor"),
  (lambda: LF.interpolate(Tensor.zeros(1, 1, 4), size=2, mode="bilinear"), r"expects 4-D input, got \(1, 1, 4\)"),
  (lambda: LF.max_pool2d(Tensor.zeros(1, 1, 2, 2), 3), r"does not fit the input \(1, 1, 2, 2\)"),
  (lambda: LF.max_pool2d(Tensor.zeros(1, 1, 6, 6), 2, padding=2), "at most half the kernel size"),
  (lambda: LF.avg_pool1d(Tensor.zeros(2, 2, 2, 2), 2), r"expects a 2-D or 3-D input, got \(2, 2, 2, 2\)"),
  (lambda: LF.fold(Tensor.zeros(1, 8, 5), (3, 3), 2), r"input \(1, 8, 5\) does not fit kernel \(2, 2\)"),
  (lambda: LF.group_norm(Tensor.zeros(2, 6, 3), 4), r"input \(2, 6, 3\) must be divisible by num_groups 4"),
  (lambda: LF.pixel_shuffle(Tensor.zeros(1, 6, 2, 2), 2), r"channels 6 of input \(1, 6, 2, 2\)"),
  (lambda: LF.glu(Tensor.zeros(3, 5)), r"dim -1 of input \(3, 5\) must have an even size"),
  (lambda: LF.bilinear(Tensor.zeros(2, 3), Tensor.zeros(2, 4), Tensor.zeros(5, 4, 3)), r"weight \(5, 4, 3\) does not fit inputs"),
  (lambda: LF.smooth_l1_loss(Tensor.zeros(2, 3), Tensor.zeros(3, 2)), r"target \(3, 2\) must have the input's shape \(2, 3\)"),
  (lambda: LF.mse_loss(Tensor.zeros(2), Tensor.zeros(2), reduction="avg"), "reduction must be"),
  (lambda: LF.embedding(Tensor([0]), Tensor.zeros(3, 2), max_norm=1.0), "max_norm"),
]


@pytest.mark.parametrize("call,match", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_bad_input_raises_at_the_call(call, match, device):
  if device == "interp": pytest.skip("host-side checks: the cpu run covers them")
  with pytest.raises((ValueError, TypeError), match=match): call()


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_inverts_max_pool(nd):
  shape = {1: (2, 3, 8), 2: (1, 2, 4, 6), 3: (1, 1, 4, 2, 4)}[nd]
  def fn(F, x):
    v, i = getattr(F, f"max_pool{nd}d")(x, 2, return_indices=True)
    return getattr(F, f"max_unpool{nd}d")(v * 2, i, 2)
  same([shape], fn)
  same([(1, 2, 5, 5)], lambda F, x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2, output_size=(5, 5)))


def test_nearest_integer_upscale_is_a_view():
  import lazygrad
  x = Tensor(make_inputs([(1, 2, 8, 8)])[0]).realize()
  up = LF.interpolate(x, scale_factor=2)
  items = lazygrad.schedule(up.contiguous())
  # one elementwise copy; the general path is a one-hot compare and sum per dim (two reduce kernels)
  assert len(items) == 1 and items[0].kernel.name.startswith("E_"), [it.kernel.name for it in items]
