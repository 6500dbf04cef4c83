"""Reductions, composed from REDUCE(ADD | MAX) and elementwise ops."""
from __future__ import annotations
from typing import TYPE_CHECKING
import numpy as np
from lazygrad.ops import Ops
from lazygrad.dtype import dtypes
from lazygrad.helpers import prod
from lazygrad.autograd import custom_vjp
from lazygrad.tensor_base import TensorBase, ShapeError, DimError, DTypeError, MinMax, check_dim as _check_dim, reject_dtype, autocast_op, FP32, KEEP

if TYPE_CHECKING: from lazygrad.tensor import Tensor

__all__ = ["ReduceMixin", "MinMax"]


class ReduceMixin(TensorBase):
  """Tensor's reductions (sum, mean, var, max, argmax, logsumexp, softmax, cumsum, sort, topk, ...)."""
  __slots__ = ()
  def _axes(self, op: str, dim) -> tuple[int, ...]:
    if dim is None: return tuple(range(self.ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = tuple(_check_dim(op, d, self.ndim) for d in dims)
    if len(set(axes)) != len(axes): raise ShapeError(f"{op}: dim {dim} appears more than once")
    return axes if self.ndim else ()

  def _reduced(self, op: Ops, name: str, dim, keepdim: bool) -> Tensor:
    axes = self._axes(name, dim)
    out = self._reduce(op, axes)
    if keepdim: return out
    return out.reshape(tuple(s for i, s in enumerate(self.shape) if i not in axes))

  def sum(self, dim=None, keepdim=False, dtype=None, axis=None) -> Tensor:
    """torch.sum over dim (None: all; an int or a tuple; axis= alias), keepdim; ints and bools sum in int64, as torch; dtype casts first."""
    dim = axis if axis is not None else dim
    x = self.cast(dtypes.from_any(dtype)) if dtype is not None else self.cast(dtypes.int64) if not self.dtype.is_float else self
    return x._reduced(Ops.ADD, "sum", dim, keepdim)
  def mean(self, dim=None, keepdim=False, dtype=None, axis=None) -> Tensor:
    """torch.mean over dim (None: all); float inputs only unless dtype is given, as torch; half floats accumulate
    in float32. An empty reduction is nan."""
    dim = axis if axis is not None else dim
    if not self.dtype.is_float and dtype is None:
      raise DTypeError(f"mean: input dtype must be floating point, got {self.dtype}")
    x = self.cast(dtypes.from_any(dtype)) if dtype is not None else self
    n = prod(self.shape[a] for a in self._axes("mean", dim))
    # half floats accumulate in float32 as torch does: their sum may not fit where the mean does
    s = x.sum(dim, keepdim, dtype=dtypes.float32 if x.dtype.is_float and x.dtype.itemsize < 4 else None)
    return (s / n if n else s * float("nan")).cast(x.dtype)
  def _half_to_float(self) -> Tensor:
    # half floats compute statistics (squares, exps, sums) in float32 and round once at the end, as torch's opmath
    return self.float() if self.dtype.is_float and self.dtype.itemsize < 4 else self
  def _var(self, name: str, dim, keepdim, correction, unbiased) -> Tensor:
    # the variance in float32 for half floats (300**2 overflows float16 where the std does not)
    if unbiased is not None: correction = int(unbiased)
    n = prod(self.shape[a] for a in self._axes(name, dim))
    x = self._half_to_float()
    centered = x - x.mean(dim, keepdim=True)
    return (centered * centered).sum(dim, keepdim) / max(n - correction, 0)
  def var(self, dim=None, keepdim=False, correction=1, unbiased=None, axis=None) -> Tensor:
    """torch.var with correction (default 1; unbiased=True/False as the old torch API); half floats compute in float32."""
    return self._var("var", axis if axis is not None else dim, keepdim, correction, unbiased).cast(self._float().dtype)
  def std(self, dim=None, keepdim=False, correction=1, unbiased=None, axis=None) -> Tensor:
    """torch.std: sqrt(var); where the variance is 0 the gradient is 0, as torch; half floats compute in float32 (their
    variance may overflow where the std does not)."""
    v = self._var("std", axis if axis is not None else dim, keepdim, correction, unbiased)
    # where the variance is 0, torch's gradient is 0 (sqrt's inf times a zero would be nan)
    zero = v.eq(0)
    return zero.where(0, zero.where(1, v).sqrt()).cast(self._float().dtype)
  def var_mean(self, dim=None, keepdim=False, correction=1):
    """torch.var_mean: the tuple (var, mean)."""
    return self.var(dim, keepdim, correction), self.mean(dim, keepdim)

  def _check_nonempty(self, op, dim):
    for a in self._axes(op, dim):
      if self.shape[a] == 0: raise DimError(f"{op}: cannot reduce over the empty dim {a} of shape {self.shape}")

  def amax(self, dim=None, keepdim=False, axis=None) -> Tensor:
    """torch.amax over dim (None: all, or a tuple); ties share the gradient equally, as torch. Raises on an empty dim."""
    dim = axis if axis is not None else dim
    self._check_nonempty("amax", dim)
    return self._reduced(Ops.MAX, "amax", dim, keepdim)
  def amin(self, dim=None, keepdim=False, axis=None) -> Tensor:
    """torch.amin over dim (None: all, or a tuple); ties share the gradient equally, as torch. Raises on an empty dim."""
    dim = axis if axis is not None else dim
    self._check_nonempty("amin", dim)
    if self.dtype.is_bool: return self.all(dim, keepdim)
    if self.dtype.is_int: return ~((~self).amax(dim, keepdim))   # ~ reverses the order without overflow, unlike -
    return -((-self).amax(dim, keepdim))
  def max(self, dim=None, keepdim=False, axis=None):
    """torch.max: with no dim the 0-d max (ties share the gradient equally, as torch); with dim the named tuple
    (values, indices), the values' gradient going to the returned index only (as torch); with a Tensor, maximum."""
    dim = axis if axis is not None else dim
    if isinstance(dim, TensorBase): return self.maximum(dim)
    if dim is None: return self.amax()
    # torch has no argmax of bools, but max(dim) of bools gives indices
    values = self.amax(dim, keepdim)   # first: its checks name max's reduction (amax), not argmax
    idx = (self.cast(dtypes.int8) if self.dtype.is_bool else self).argmax(dim, keepdim)
    return MinMax(self._grad_to_index(values, idx, dim, keepdim), idx)
  def min(self, dim=None, keepdim=False, axis=None):
    """torch.min: with no dim the 0-d min (ties share the gradient equally, as torch); with dim the named tuple
    (values, indices), the values' gradient going to the returned index only (as torch); with a Tensor, minimum."""
    dim = axis if axis is not None else dim
    if isinstance(dim, TensorBase): return self.minimum(dim)
    if dim is None: return self.amin()
    values = self.amin(dim, keepdim)
    idx = self.argmin(dim, keepdim)
    return MinMax(self._grad_to_index(values, idx, dim, keepdim), idx)
  def _grad_to_index(self, values: Tensor, idx: Tensor, dim: int, keepdim: bool) -> Tensor:
    """values (amax/amin along dim, whose own rule splits the gradient among ties) with torch's max(dim)/min(dim)
    gradient instead: all of it to the element at idx. A custom vjp, so the forward stays the exact reduction."""
    # a 0-d input reduces to itself (the same node: a custom vjp there would be the input's own): the gradient is g
    if not values.requires_grad or self.ndim == 0 or values.node is self.node: return values
    d = _check_dim("max", dim, self.ndim)
    n, kept = self.shape[d], self.shape[:d] + (1,) + self.shape[d + 1:]
    pos = self._Tensor.arange(n, device=self.device).reshape((n,) + (1,) * (self.ndim - d - 1))
    hit = pos.eq(idx.reshape(kept))   # broadcasts to self.shape: True at the returned index only
    return custom_vjp(values, (self,), lambda g: (hit.where(g.reshape(kept), 0),))
  def argmax(self, dim=None, keepdim=False, axis=None) -> Tensor:
    """torch.argmax: int64 index of the first maximum (nan counts as the maximum, as torch); dim=None indexes the flattened tensor."""
    dim = axis if axis is not None else dim
    reject_dtype("argmax", self)
    if dim is None: return self.reshape(-1).argmax(0)
    d = _check_dim("argmax", dim, self.ndim)
    self._check_nonempty("argmax", d)
    x = self.reshape(1) if self.ndim == 0 else self
    n = x.shape[d]
    # the first index of the max: count down from n so the smallest index wins
    idx = self._Tensor.arange(n, 0, -1, device=self.device).reshape((n,) + (1,) * (x.ndim - d - 1))
    hit = x.eq(x.amax(d, keepdim=True)) | (x.isnan() if x.dtype.is_float else False)
    out = n - hit.where(idx._broadcast_to(x.shape), 0).amax(d, keepdim=True)
    return out if keepdim and self.ndim else out.reshape(tuple(s for i, s in enumerate(self.shape) if i != d))
  def argmin(self, dim=None, keepdim=False, axis=None) -> Tensor:
    """torch.argmin: int64 index of the first minimum (nan counts as the minimum, as torch); dim=None indexes the flattened tensor."""
    dim = axis if axis is not None else dim
    if self.dtype.is_bool: return self.logical_not().cast(dtypes.int8).argmax(dim, keepdim)
    return (~self if self.dtype.is_int else -self).argmax(dim, keepdim)
  def all(self, dim=None, keepdim=False) -> Tensor:
    """torch.all: True where every element along dim is nonzero (a bool tensor)."""
    return self.logical_not().any(dim, keepdim).logical_not()
  def any(self, dim=None, keepdim=False) -> Tensor:
    """torch.any: True where some element along dim is nonzero (a bool tensor)."""
    return self.cast(dtypes.bool)._reduced(Ops.MAX, "any", dim, keepdim)
  @autocast_op(FP32)
  def prod(self, dim=None, keepdim=False, dtype=None) -> Tensor:
    """torch.prod over one dim (or all with dim=None); a tree of pairwise multiplies: log2(n) kernels, exact gradients at zeros."""
    x = self.cast(dtypes.from_any(dtype)) if dtype else self.cast(dtypes.int64) if not self.dtype.is_float else self
    if dim is None: return x.reshape(-1).prod(0, keepdim=False).reshape((1,) * self.ndim if keepdim else ())
    d = _check_dim("prod", dim, self.ndim)
    x = x.transpose(d, -1) if x.ndim else x.reshape(1)
    # a tree of multiplies: log2(n) kernels, exact (and exact gradients at zeros)
    while x.shape[-1] > 1:
      n = x.shape[-1]
      if n % 2: x = x.pad((0, 1), value=1)
      x = (x[..., 0::2] * x[..., 1::2]).contiguous()
    if x.shape[-1] == 0: x = x.pad((0, 1), value=1)
    x = x.transpose(d, -1) if self.ndim else x.reshape(())
    return x if keepdim or not self.ndim else x.squeeze(d)
  def _row_max(self, op: str, dim, finite: bool) -> Tensor:
    # the detached max along dim (keepdim) that softmax and logsumexp subtract; finite: 0 where it is infinite (all -inf rows
    # stay -inf instead of nan). 0 over an empty dim, as torch: an empty softmax, a -inf logsumexp
    if any(self.shape[a] == 0 for a in self._axes(op, dim)): return self.sum(dim, keepdim=True).detach()
    m = self.amax(dim, keepdim=True).detach()
    return m.isinf().where(0, m) if finite else m
  def logsumexp(self, dim=None, keepdim=False) -> Tensor:
    """torch.logsumexp: log(sum(exp(x))) computed stably around the (detached) max; all -inf rows and empty dims give -inf;
    half floats compute in float32 (finite where torch's float16 sum of more than 65504 ones is inf)."""
    x = (self if self.dtype.is_float else self._float())._half_to_float()   # ints and bools give floats, as torch
    m = x._row_max("logsumexp", dim, finite=True)
    out = ((x - m).exp().sum(dim, keepdim=True).log() + m).cast(self._float().dtype)
    return out if keepdim else out.squeeze(self._axes("logsumexp", dim))
  def softmax(self, dim=-1, dtype=None) -> Tensor:
    """torch.softmax along dim (default -1; torch requires it); ints compute in float32, half floats in float32 rounded to
    their dtype at the end, as torch; dtype casts first; an empty dim gives the empty tensor."""
    if not dtype: reject_dtype("softmax", self, int_=True)
    x = self.cast(dtype) if dtype else self._float()
    h = x._half_to_float()
    e = (h - h._row_max("softmax", dim, finite=False)).exp()
    return (e / e.sum(dim, keepdim=True)).cast(x.dtype)
  def log_softmax(self, dim=-1, dtype=None) -> Tensor:
    """torch.log_softmax along dim (default -1; torch requires it), as (x - max) - log(sum(exp(x - max))); half floats
    compute in float32, as torch."""
    if not dtype: reject_dtype("log_softmax", self, int_=True)
    x = self.cast(dtype) if dtype else self._float()
    h = x._half_to_float()
    # (x - m) - log(sum(exp(x - m))): subtracting a big logsumexp instead would lose the small values' precision
    # the max as it is (not made finite): a row with +inf (or all -inf) is nan throughout, as torch
    m = h._row_max("log_softmax", dim, finite=False)
    # -(m - x), not the (x - m) inside the exp: one shared node would be stored at full size between the two kernels
    return (-(m - h) - (h - m).exp().sum(dim, keepdim=True).log()).cast(x.dtype)
  def cumsum(self, dim=0) -> Tensor:
    """torch.cumsum along dim: one lower-triangular contraction (O(n^2) work along dim, one kernel); ints give int64; inf and nan
    propagate as torch."""
    d = _check_dim("cumsum", dim, self.ndim)
    if self.ndim == 0: return self if self.dtype.is_float else self.cast(dtypes.int64)   # ints and bools sum to int64, as torch
    x = self.transpose(d, -1)
    n = x.shape[-1]
    # a lower-triangular contraction: one kernel (a matmul on cpu)
    tri = (self._Tensor.arange(n, device=self.device).reshape(n, 1) >= self._Tensor.arange(n, device=self.device).reshape(1, n))
    if not x.dtype.is_float: return (x.unsqueeze(-2) * tri.cast(x.dtype)).sum(-1).cast(dtypes.int64).transpose(d, -1)
    # floats select with the triangle instead of multiplying by it: inf * 0 above the diagonal would be nan, and the
    # gradient of a select is the reverse cumsum of the incoming one at every element (nan and inf ones too, as torch;
    # masking the non-finite values out of a contraction gave them none)
    return tri.where(x.unsqueeze(-2), 0).sum(-1).transpose(d, -1)
  @autocast_op(KEEP)
  def cumprod(self, dim=0) -> Tensor:
    """torch.cumprod along dim, as n separate products stacked: fine for short dims, slow for long ones."""
    d = _check_dim("cumprod", dim, self.ndim)
    if self.ndim == 0: return self.prod()   # torch: a 0-d cumprod is the value (in prod's dtype)
    if self.ndim and self.shape[d] == 0: return self.prod(d, keepdim=True).narrow(d, 0, 0)   # torch: the empty tensor, prod's dtype
    return self._Tensor.stack([self.narrow(d, 0, i + 1).prod(d) for i in range(self.shape[d])], d)

  def argsort(self, dim=-1, descending=False) -> Tensor:
    """torch.argsort (stable): int64 indices; nan sorts as the largest value, as torch. Sorts on the host, so it realizes
    (a device sync); not differentiable."""
    d = _check_dim("argsort", dim, self.ndim)
    a = self.numpy()
    if a.ndim == 0: return self._Tensor(np.zeros((), np.int64), device=self.device)
    if not descending: return self._Tensor(np.argsort(a, axis=d, kind="stable").astype(np.int64), device=self.device)
    # descending without negating (-x wraps for unsigned/INT_MIN, fails on bool, keeps nan last): a stable ascending sort of the
    # reversed dim, read backwards, puts the largest (nan) first and keeps ties in index order
    n = a.shape[d]
    idx = (n - 1) - np.flip(np.argsort(np.flip(a, d), axis=d, kind="stable"), d)
    return self._Tensor(idx.astype(np.int64), device=self.device)
  def sort(self, dim=-1, descending=False):
    """torch.sort: the named tuple (values, indices); indices from argsort (host sort, a sync), values gathered (differentiable)."""
    idx = self.argsort(dim, descending)
    if self.ndim == 0: return MinMax(self.reshape(()), idx)
    return MinMax(self.gather(dim, idx), idx)
  def topk(self, k, dim=-1, largest=True, sorted=True):
    """torch.topk: the named tuple (values, indices) of the k largest (or smallest) along dim, always sorted; a host sort (a sync)."""
    reject_dtype("topk", self)
    if self.ndim == 0:
      if k != 1: raise ValueError(f"topk: k ({k}) out of range for a 0-d tensor (lazygrad takes k=1 only)")
      return self.sort(dim)
    idx = self.argsort(dim, descending=largest).narrow(dim, 0, k)
    return MinMax(self.gather(dim, idx), idx)

