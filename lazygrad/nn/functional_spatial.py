"""The spatial part of torch.nn.functional (re-exported by lazygrad.nn.functional): convolutions
(incl. transposed), pooling of 1-3 dims with ceil_mode/return_indices, adaptive pooling,
interpolate, pad modes, unfold/fold and pixel shuffles. All composed from Tensor ops:
windows are views (Tensor._pool), index maps are small host-computed constants."""
from __future__ import annotations
import math
from typing import Optional
import numpy as np
from lazygrad.dtype import dtypes
from lazygrad.tensor import Tensor
from lazygrad.tensor_base import ShapeError

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "max_pool1d", "max_pool2d",
           "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d",
           "avg_pool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices", "interpolate",
           "upsample", "upsample_nearest", "upsample_bilinear", "pad", "unfold", "fold", "pixel_shuffle", "pixel_unshuffle",
           "channel_shuffle"]


def ntuple(x, n: int, name: str, op: str) -> tuple:
  """x as n ints (an int repeats; a 1-tuple repeats too, as torch); ValueError naming op otherwise."""
  t = tuple(x) if isinstance(x, (tuple, list)) else (x,) * n
  if len(t) == 1 and n > 1: t = t * n
  if len(t) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in t):
    raise ValueError(f"{op}: {name} must be an int or {n} ints, got {x!r}")
  return tuple(int(v) for v in t)


# ---- convolution
def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
  """F.conv1d: (N, C, L) with weight (O, C/groups, k)."""
  return input.conv1d(weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
  """F.conv2d: (N, C, H, W) with weight (O, C/groups, kH, kW); padding ints, 'same' or 'valid'."""
  return input.conv2d(weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
  """F.conv3d: (N, C, D, H, W) with weight (O, C/groups, kD, kH, kW); the same windows-times-weight contraction as conv2d."""
  return input._conv(weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _dilate(x: Tensor, dim: int, s: int) -> Tensor:
  """s - 1 zeros between neighbours along dim (the input of a strided transposed convolution): pad and reshape, views."""
  if s == 1 or x.shape[dim] == 0: return x
  n = x.shape[dim]
  y = x.movedim(dim, -1).unsqueeze(-1).pad((0, s - 1)).flatten(-2)
  return y.narrow(-1, 0, (n - 1) * s + 1).movedim(-1, dim)


def _conv_transpose(x: Tensor, weight: Tensor, bias, stride, padding, output_padding, groups, dilation, nd: int, op: str) -> Tensor:
  if not isinstance(weight, Tensor): raise TypeError(f"{op}: weight must be a Tensor")
  if x.ndim != nd + 2 or weight.ndim != nd + 2:
    raise ShapeError(f"{op}: expects input (N, C, *{nd} spatial dims) and weight of {nd + 2} dims, got {x.shape} and {weight.shape}")
  cin, kernel = weight.shape[0], weight.shape[2:]
  if x.shape[1] != cin or cin % groups:
    raise ShapeError(f"{op}: input {x.shape} has {x.shape[1]} channels, weight {weight.shape} expects {cin} (groups={groups})")
  s, p, d = ntuple(stride, nd, "stride", op), ntuple(padding, nd, "padding", op), ntuple(dilation, nd, "dilation", op)
  op_ = ntuple(output_padding, nd, "output_padding", op)
  if any(o >= max(ss, dd) for o, ss, dd in zip(op_, s, d)):
    raise ValueError(f"{op}: output_padding {op_} must be smaller than stride {s} or dilation {d}")
  # the gradient of a conv: zeros between input elements, a full padding less `padding`, and the flipped, transposed weight
  for i in range(nd): x = _dilate(x, 2 + i, s[i])
  pads = []
  for i in reversed(range(nd)):
    full = d[i] * (kernel[i] - 1) - p[i]
    pads += [full, full + op_[i]]
  x = x.pad(tuple(pads))
  cout_g = weight.shape[1]
  w = weight.reshape((groups, cin // groups, cout_g) + tuple(kernel)).transpose(1, 2)
  w = w.reshape((groups * cout_g, cin // groups) + tuple(kernel)).flip(tuple(range(2, 2 + nd)))
  return x._conv(w, bias, 1, 0, d, groups, nd, op)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1) -> Tensor:
  """F.conv_transpose1d: (N, C_in, L) with weight (C_in, C_out/groups, k); the gradient of conv1d, composed as a conv of the
  zero-dilated input with the flipped weight."""
  return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1, "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1) -> Tensor:
  """F.conv_transpose2d: (N, C_in, H, W) with weight (C_in, C_out/groups, kH, kW); composed as conv_transpose1d."""
  return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2, "conv_transpose2d")


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1) -> Tensor:
  """F.conv_transpose3d: (N, C_in, D, H, W) with weight (C_in, C_out/groups, kD, kH, kW); composed as conv_transpose1d."""
  return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 3, "conv_transpose3d")


# ---- pooling
def _pool_geometry(x: Tensor, nd: int, kernel_size, stride, padding, dilation, ceil_mode: bool, op: str):
  """(k, s, p, d, out sizes, extra right padding) for pooling the last nd dims, as torch computes them."""
  if x.ndim not in (nd + 1, nd + 2): raise ShapeError(f"{op}: expects a {nd + 1}-D or {nd + 2}-D input, got {x.shape}")
  k = ntuple(kernel_size, nd, "kernel_size", op)
  s = ntuple(stride if stride is not None and stride != [] else k, nd, "stride", op)
  p, d = ntuple(padding, nd, "padding", op), ntuple(dilation, nd, "dilation", op)
  if any(v <= 0 for v in k + s + d) or any(v < 0 for v in p):
    raise ValueError(f"{op}: kernel_size {k}, stride {s} and dilation {d} must be positive and padding {p} non-negative")
  if any(pp * 2 > kk for pp, kk in zip(p, k)): raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
  outs, extra = [], []
  for n, kk, ss, pp, dd in zip(x.shape[-nd:], k, s, p, d):
    span = dd * (kk - 1) + 1
    o = (n + 2 * pp - span + (ss - 1 if ceil_mode else 0)) // ss + 1
    if ceil_mode and (o - 1) * ss >= n + pp: o -= 1   # the last window must start inside the input or its left padding
    if o < 1: raise ShapeError(f"{op}: kernel {k} (padding {p}, dilation {d}) does not fit the input {x.shape}; output would be empty")
    outs.append(o)
    extra.append(max(0, (o - 1) * ss + span - (n + 2 * pp)))
  return k, s, p, d, tuple(outs), tuple(extra)


def _pads(p: tuple, extra: tuple) -> tuple:
  """F.pad's order (last dim first) for left p and right p + extra on each pooled dim."""
  out = []
  for pp, ee in zip(reversed(p), reversed(extra)): out += [pp, pp + ee]
  return tuple(out)


def _max_pool(x: Tensor, nd: int, kernel_size, stride, padding, dilation, ceil_mode, return_indices, op: str):
  k, s, p, d, outs, extra = _pool_geometry(x, nd, kernel_size, stride, padding, dilation, ceil_mode, op)
  xp = x.pad(_pads(p, extra), value=float("-inf")) if any(p) or any(extra) else x
  win = xp._pool(k, s, d)                                                         # (..., *outs, *k)
  if not return_indices: return win.amax(tuple(range(-nd, 0)))
  flat = win.flatten(-nd) if nd > 1 else win
  am = flat.argmax(-1)                                                            # the first maximum of each window, as torch
  hit = am.unsqueeze(-1).eq(Tensor.arange(flat.shape[-1], device=x.device))
  values = hit.where(flat, 0).sum(-1)                                             # the gradient goes to that one element, as torch
  spatial = x.shape[-nd:]
  pos = Tensor(np.arange(int(np.prod(spatial)), dtype=np.float32).reshape(spatial), device=x.device)
  pos = pos.pad(_pads(p, extra), value=-1)._pool(k, s, d)
  pos = pos.flatten(-nd) if nd > 1 else pos
  return values, hit.where(pos, 0).sum(-1).cast(dtypes.int64)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, return_indices: bool = False):
  """F.max_pool1d on (N, C, L) or (C, L), with ceil_mode and return_indices (indices into L, as torch)."""
  return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool1d")


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, return_indices: bool = False):
  """F.max_pool2d on (N, C, H, W) or (C, H, W), with ceil_mode and return_indices (flat indices into H*W, as torch).
  Without return_indices, tied maxima share the gradient (torch gives it to one); with it, the first maximum gets it, as torch."""
  return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool2d")


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, return_indices: bool = False):
  """F.max_pool3d on (N, C, D, H, W) or (C, D, H, W), as max_pool2d."""
  return _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool3d")


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
  """F.max_pool1d_with_indices: max_pool1d(..., return_indices=True)."""
  return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
  """F.max_pool2d_with_indices: max_pool2d(..., return_indices=True)."""
  return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
  """F.max_pool3d_with_indices: max_pool3d(..., return_indices=True)."""
  return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _avg_pool(x: Tensor, nd: int, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, op: str) -> Tensor:
  k, s, p, d, outs, extra = _pool_geometry(x, nd, kernel_size, stride, padding, 1, ceil_mode, op)
  pads = _pads(p, extra)
  total = x.pad(pads)._pool(k, s, d).sum(tuple(range(-nd, 0)))
  if divisor_override: return total / divisor_override
  # torch's divisor: the window clipped to the padded input (count_include_pad) or to the input itself
  spatial = x.shape[-nd:]
  inside = np.ones(spatial, dtype=np.float32)
  inside = np.pad(inside, [(pp, pp) for pp in p], constant_values=1.0 if count_include_pad else 0.0)
  inside = np.pad(inside, [(0, e) for e in extra])
  count = Tensor(inside, device=x.device)._pool(k, s, d).sum(tuple(range(-nd, 0)))
  return (total / count).cast(x.dtype) if x.dtype.is_float else total / count


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
  """F.avg_pool1d on (N, C, L) or (C, L), with ceil_mode and count_include_pad."""
  return _avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None, "avg_pool1d")


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
  """F.avg_pool2d on (N, C, H, W) or (C, H, W), with ceil_mode, count_include_pad and divisor_override."""
  return _avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, "avg_pool2d")


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
  """F.avg_pool3d on (N, C, D, H, W) or (C, D, H, W), as avg_pool2d."""
  return _avg_pool(input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, "avg_pool3d")


def _lp_pool(x: Tensor, nd: int, norm_type: float, kernel_size, stride, ceil_mode: bool, op: str) -> Tensor:
  k = ntuple(kernel_size, nd, "kernel_size", op)
  out = _avg_pool(x ** norm_type, nd, k, stride, 0, ceil_mode, True, None, op) * math.prod(k)
  return (out.sign() * out.abs().relu()) ** (1.0 / norm_type)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
  """F.lp_pool3d: (sum of x^p over each window)^(1/p)."""
  return _lp_pool(input, 3, norm_type, kernel_size, stride, ceil_mode, "lp_pool3d")


def _max_unpool(x: Tensor, indices: Tensor, nd: int, kernel_size, stride, padding, output_size, op: str) -> Tensor:
  if indices.shape != x.shape or indices.dtype.is_float:
    raise ValueError(f"{op}: indices must be an integer tensor of the input's shape {x.shape}, got {indices.dtype} {indices.shape}")
  if x.ndim not in (nd + 1, nd + 2): raise ShapeError(f"{op}: expects a {nd + 1}-D or {nd + 2}-D input, got {x.shape}")
  k, p = ntuple(kernel_size, nd, "kernel_size", op), ntuple(padding, nd, "padding", op)
  s = ntuple(stride if stride is not None else k, nd, "stride", op)
  outs = tuple(output_size)[-nd:] if output_size is not None else \
    tuple((n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in zip(x.shape[-nd:], s, p, k))
  lead = x.shape[:-nd]
  flat_x, flat_i = x.reshape(lead + (-1,)), indices.reshape(lead + (-1,))
  # each value lands at its flat index: a one-hot compare and a sum over the pooled positions (no scatter primitive)
  hit = flat_i.unsqueeze(-1).eq(Tensor.arange(math.prod(outs), device=x.device))
  return hit.where(flat_x.unsqueeze(-1), 0).sum(-2).cast(x.dtype).reshape(lead + outs)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
  """F.max_unpool1d: the inverse of max_pool1d(return_indices=True): zeros except the maxima at their indices."""
  return _max_unpool(input, indices, 1, kernel_size, stride, padding, output_size, "max_unpool1d")


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
  """F.max_unpool2d: the inverse of max_pool2d(return_indices=True) (indices flat into H*W); values that share an index add
  (torch keeps one of them)."""
  return _max_unpool(input, indices, 2, kernel_size, stride, padding, output_size, "max_unpool2d")


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
  """F.max_unpool3d: the inverse of max_pool3d(return_indices=True)."""
  return _max_unpool(input, indices, 3, kernel_size, stride, padding, output_size, "max_unpool3d")


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
  """F.lp_pool1d: (sum of x^p over each window)^(1/p)."""
  return _lp_pool(input, 1, norm_type, kernel_size, stride, ceil_mode, "lp_pool1d")


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
  """F.lp_pool2d: (sum of x^p over each window)^(1/p)."""
  return _lp_pool(input, 2, norm_type, kernel_size, stride, ceil_mode, "lp_pool2d")


# ---- adaptive pooling: torch's windows [floor(i n / o), ceil((i + 1) n / o)) as host-built matrices
def _adaptive_windows(n: int, o: int) -> np.ndarray:
  """(o, n) bool: which inputs fall in each output's window."""
  m = np.zeros((o, n), dtype=bool)
  for i in range(o): m[i, (i * n) // o: -(-((i + 1) * n) // o)] = True
  return m


def _adaptive_sizes(x: Tensor, nd: int, output_size, op: str) -> tuple:
  if x.ndim not in (nd + 1, nd + 2): raise ShapeError(f"{op}: expects a {nd + 1}-D or {nd + 2}-D input, got {x.shape}")
  sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
  if len(sizes) != nd: raise ValueError(f"{op}: output_size must be an int or {nd} ints, got {output_size!r}")
  return tuple(n if o is None else int(o) for o, n in zip(sizes, x.shape[-nd:]))


def _adaptive_avg(x: Tensor, nd: int, output_size, op: str) -> Tensor:
  outs = _adaptive_sizes(x, nd, output_size, op)
  for i, o in enumerate(outs):
    dim = x.ndim - nd + i
    m = _adaptive_windows(x.shape[dim], o).astype(np.float32)
    w = Tensor(m / m.sum(1, keepdims=True), device=x.device).cast(x.dtype if x.dtype.is_float else dtypes.float32)
    x = (x.movedim(dim, -1) @ w.T).movedim(-1, dim)   # averaging is separable: one small matmul per dim
  return x


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
  """F.adaptive_avg_pool1d: mean over torch's adaptive windows of L."""
  return _adaptive_avg(input, 1, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
  """F.adaptive_avg_pool2d: mean over torch's adaptive windows (None in output_size keeps that dim)."""
  return _adaptive_avg(input, 2, output_size, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
  """F.adaptive_avg_pool3d: mean over torch's adaptive windows."""
  return _adaptive_avg(input, 3, output_size, "adaptive_avg_pool3d")


def _adaptive_max(x: Tensor, nd: int, output_size, return_indices: bool, op: str):
  outs = _adaptive_sizes(x, nd, output_size, op)
  spatial = x.shape[-nd:]
  mask = np.ones((1, 1), dtype=bool)
  for n, o in zip(spatial, outs):   # (prod outs, prod spatial): which input positions each output cell sees
    w = _adaptive_windows(n, o)
    mask = (mask[:, None, :, None] & w[None, :, None, :]).reshape(mask.shape[0] * o, mask.shape[1] * n)
  flat = x.flatten(-nd) if nd > 1 else x
  cand = Tensor(mask, device=x.device).where(flat.unsqueeze(-2), float("-inf"))   # (..., O, N)
  am = cand.argmax(-1)
  hit = am.unsqueeze(-1).eq(Tensor.arange(mask.shape[1], device=x.device))
  values = hit.where(cand, 0).sum(-1).reshape(x.shape[:-nd] + outs)
  return (values, am.reshape(x.shape[:-nd] + outs)) if return_indices else values


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
  """F.adaptive_max_pool1d: max over torch's adaptive windows (the first maximum gets the gradient, as torch)."""
  return _adaptive_max(input, 1, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
  """F.adaptive_max_pool2d: max over torch's adaptive windows; indices are flat into H*W. Work is (out cells) x (in cells)."""
  return _adaptive_max(input, 2, output_size, return_indices, "adaptive_max_pool2d")


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
  """F.adaptive_max_pool3d: max over torch's adaptive windows; indices flat into D*H*W."""
  return _adaptive_max(input, 3, output_size, return_indices, "adaptive_max_pool3d")


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = False):
  """F.adaptive_max_pool3d_with_indices."""
  return _adaptive_max(input, 3, output_size, True, "adaptive_max_pool3d")


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = False):
  """F.adaptive_max_pool1d_with_indices."""
  return _adaptive_max(input, 1, output_size, True, "adaptive_max_pool1d")


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = False):
  """F.adaptive_max_pool2d_with_indices."""
  return _adaptive_max(input, 2, output_size, True, "adaptive_max_pool2d")


# ---- interpolate
def _source_index(n_in: int, n_out: int, scale: Optional[float], mode: str, align_corners: bool):
  """torch's source coordinate of each output position (upsample kernels' area_pixel_compute_source_index)."""
  dst = np.arange(n_out, dtype=np.float64)
  if mode in ("nearest", "nearest-exact"):
    ratio = 1.0 / scale if scale else n_in / n_out
    src = np.floor((dst + (0.5 if mode == "nearest-exact" else 0.0)) * np.float32(ratio))
    return np.minimum(src, n_in - 1).astype(np.int64), None
  if align_corners: src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
  else:
    ratio = np.float32(1.0 / scale if scale else n_in / n_out)
    src = np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
  i0 = np.minimum(np.floor(src), n_in - 1).astype(np.int64)
  return i0, (np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32))


def _repeat_each(x: Tensor, dim: int, k: int) -> Tensor:
  """Each element along dim repeated k times in place ([a, b] -> [a, a, b, b] for k=2): an expand and a reshape."""
  if k == 1: return x
  y = x.unsqueeze(dim + 1)
  return y.expand(y.shape[:dim + 1] + (k,) + y.shape[dim + 2:]).flatten(dim, dim + 1)


def _take(x: Tensor, dim: int, idx: np.ndarray) -> Tensor:
  """x indexed along dim by a host index array (a GATHER, as Tensor indexing)."""
  return x[(slice(None),) * dim + (Tensor(idx, device=x.device),)]


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False) -> Tensor:
  """F.interpolate of (N, C, *spatial) with mode nearest, nearest-exact, linear, bilinear, trilinear or area; source positions
  as torch's (align_corners, and scale_factor used as given unless recompute_scale_factor). No bicubic or antialias."""
  nd = input.ndim - 2
  if nd < 1: raise ValueError(f"interpolate: expects (N, C, *spatial), got {input.shape}")
  if antialias: raise ValueError("interpolate: antialias=True is not supported")
  linear = {"linear": 1, "bilinear": 2, "trilinear": 3}
  if mode not in ("nearest", "nearest-exact", "area") and mode not in linear: raise ValueError(f"interpolate: mode {mode!r} is not supported")
  if mode in linear and linear[mode] != nd: raise ValueError(f"interpolate: mode {mode!r} expects {linear[mode] + 2}-D input, got {input.shape}")
  if align_corners is not None and mode not in linear: raise ValueError(f"interpolate: align_corners only goes with linear modes, not {mode!r}")
  if (size is None) == (scale_factor is None): raise ValueError("interpolate: give exactly one of size and scale_factor")
  spatial = input.shape[2:]
  if size is not None:
    outs, scales = ntuple(size, nd, "size", "interpolate"), (None,) * nd
  else:
    scales = tuple(float(v) for v in (scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd))
    outs = tuple(int(math.floor(n * f)) for n, f in zip(spatial, scales))
    if recompute_scale_factor: scales = (None,) * nd
  if mode == "area": return _adaptive_avg(input, nd, outs, "interpolate")
  x = input if input.dtype.is_float else input.float()
  for i, (n, o, sc) in enumerate(zip(spatial, outs, scales)):
    if mode == "nearest" and n and o % n == 0 and (sc is None or sc == o // n):
      x = _repeat_each(x, 2 + i, o // n); continue   # an integer upscale: each source repeated, a view (no gather)
    i0, lin = _source_index(n, o, sc, mode, bool(align_corners))
    if lin is None: x = _take(x, 2 + i, i0); continue
    i1, lam = lin
    w = Tensor(lam.reshape((o,) + (1,) * (nd - 1 - i)), device=x.device).cast(x.dtype)
    x = _take(x, 2 + i, i0) * (1 - w) + _take(x, 2 + i, i1) * w
  return x


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None) -> Tensor:
  """F.upsample (deprecated in torch): interpolate."""
  return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
  """F.upsample_nearest (deprecated in torch): interpolate(mode='nearest')."""
  return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
  """F.upsample_bilinear (deprecated in torch): interpolate(mode='bilinear', align_corners=True)."""
  return interpolate(input, size, scale_factor, "bilinear", align_corners=True)


# ---- padding
def _pad_dim(x: Tensor, dim: int, lo: int, hi: int, mode: str) -> Tensor:
  """x padded along dim by lo before and hi after, with slices of itself (views joined by cat)."""
  n = x.shape[dim]
  if lo == 0 and hi == 0: return x
  if min(lo, hi) < 0: raise ValueError(f"pad: negative padding ({lo}, {hi}) is only supported in mode='constant'")
  if mode == "reflect":
    if max(lo, hi) >= n: raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the dim size {n} (shape {x.shape})")
    parts = [x.narrow(dim, 1, lo).flip(dim), x, x.narrow(dim, n - 1 - hi, hi).flip(dim)]
  elif mode == "replicate":
    if n == 0: raise ValueError(f"pad: replicate padding of an empty dim (shape {x.shape})")
    edge = list(x.shape)
    parts = [x.narrow(dim, 0, 1).expand(edge[:dim] + [lo] + edge[dim + 1:]), x,
             x.narrow(dim, n - 1, 1).expand(edge[:dim] + [hi] + edge[dim + 1:])]
  else:
    if max(lo, hi) > n: raise ValueError(f"pad: circular padding ({lo}, {hi}) must be at most the dim size {n} (shape {x.shape})")
    parts = [x.narrow(dim, n - lo, lo), x, x.narrow(dim, 0, hi)]
  return Tensor.cat([p for p in parts if p.shape[dim] > 0], dim)


def pad(input: Tensor, pad, mode: str = "constant", value: Optional[float] = None) -> Tensor:
  """F.pad: pad = (left, right) of the last dim first; mode constant (value, default 0; negative pads crop), reflect,
  replicate or circular (torch's restrictions on sizes)."""
  if mode == "constant": return input.pad(tuple(pad), value=0.0 if value is None else value)
  if mode not in ("reflect", "replicate", "circular"):
    raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
  pad = tuple(pad)
  if len(pad) % 2 or len(pad) // 2 > input.ndim: raise ShapeError(f"pad: padding {pad} does not fit the input {input.shape}")
  x = input
  for i in range(len(pad) // 2): x = _pad_dim(x, input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1], mode)
  return x


# ---- sliding blocks and shuffles
def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
  """F.unfold (im2col): (N, C, H, W) -> (N, C*kH*kW, L), L the number of windows; the windows are views."""
  if input.ndim not in (3, 4): raise ValueError(f"unfold: expects a 3-D or 4-D input, got {input.shape}")
  k, d = ntuple(kernel_size, 2, "kernel_size", "unfold"), ntuple(dilation, 2, "dilation", "unfold")
  p, s = ntuple(padding, 2, "padding", "unfold"), ntuple(stride, 2, "stride", "unfold")
  x = input.pad((p[1], p[1], p[0], p[0]))._pool(k, s, d)      # (N, C, oh, ow, kh, kw)
  x = x.permute(tuple(range(x.ndim - 4)) + (x.ndim - 2, x.ndim - 1, x.ndim - 4, x.ndim - 3))
  return x.flatten(1, 3).flatten(2) if x.ndim == 6 else x.flatten(0, 2).flatten(1)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
  """F.fold (col2im): (N, C*kH*kW, L) -> (N, C, H, W), overlapping values summed; one dilated, shifted view per kernel tap."""
  if input.ndim not in (2, 3): raise ValueError(f"fold: expects a 2-D or 3-D input, got {input.shape}")
  osz, k = ntuple(output_size, 2, "output_size", "fold"), ntuple(kernel_size, 2, "kernel_size", "fold")
  d, p, s = ntuple(dilation, 2, "dilation", "fold"), ntuple(padding, 2, "padding", "fold"), ntuple(stride, 2, "stride", "fold")
  x = input if input.ndim == 3 else input.unsqueeze(0)
  ph, pw = osz[0] + 2 * p[0], osz[1] + 2 * p[1]
  oh, ow = (ph - d[0] * (k[0] - 1) - 1) // s[0] + 1, (pw - d[1] * (k[1] - 1) - 1) // s[1] + 1
  if x.shape[1] % (k[0] * k[1]) or x.shape[2] != oh * ow:
    raise ShapeError(f"fold: input {input.shape} does not fit kernel {k} and output {osz} (expected (N, C*{k[0] * k[1]}, {oh * ow}))")
  c = x.shape[1] // (k[0] * k[1])
  blocks = x.reshape(x.shape[0], c, k[0], k[1], oh, ow)
  out = None
  for i in range(k[0]):
    for j in range(k[1]):
      b = _dilate(_dilate(blocks[:, :, i, j], 2, s[0]), 3, s[1])     # (N, C, (oh-1)*s+1, (ow-1)*s+1)
      top, left = i * d[0], j * d[1]
      b = b.pad((left, pw - left - b.shape[3], top, ph - top - b.shape[2]))
      out = b if out is None else out + b
  out = out[:, :, p[0]:p[0] + osz[0], p[1]:p[1] + osz[1]]
  return out if input.ndim == 3 else out.squeeze(0)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
  """F.pixel_shuffle: (*, C*r*r, H, W) -> (*, C, H*r, W*r)."""
  r = upscale_factor
  *lead, c, h, w = input.shape
  if c % (r * r): raise ValueError(f"pixel_shuffle: channels {c} of input {input.shape} not divisible by upscale_factor^2 = {r * r}")
  x = input.reshape(*lead, c // (r * r), r, r, h, w)
  n = len(lead)
  x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
  return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
  """F.pixel_unshuffle: (*, C, H*r, W*r) -> (*, C*r*r, H, W)."""
  r = downscale_factor
  *lead, c, h, w = input.shape
  if h % r or w % r: raise ValueError(f"pixel_unshuffle: spatial size of input {input.shape} not divisible by downscale_factor {r}")
  x = input.reshape(*lead, c, h // r, r, w // r, r)
  n = len(lead)
  x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
  return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
  """F.channel_shuffle: (N, C, *) with the channels regrouped from (groups, C/groups) to (C/groups, groups)."""
  n, c = input.shape[:2]
  if c % groups: raise ValueError(f"channel_shuffle: channels {c} of input {input.shape} not divisible by groups {groups}")
  return input.reshape(n, groups, c // groups, *input.shape[2:]).transpose(1, 2).reshape(input.shape)
