"""Torch methods that lazygrad composes from its other Tensor ops (issue 12's missing methods): inverse trig and
hyperbolic functions, copysign, logaddexp, cumulative max/min/logsumexp, diag/diagonal, roll, unfold, nonzero,
scatter_reduce and scatter(reduce=), sort/argsort(stable=), clamp_min/clamp_max. Each has torch's semantics, forward
and backward (autograd differentiates the composition); docstrings say where the composition differs numerically."""
from __future__ import annotations
import math
from typing import TYPE_CHECKING
import numpy as np
from lazygrad.dtype import dtypes, result_type
from lazygrad.ops import Ops
from lazygrad.tensor_base import TensorBase, ShapeError, DTypeError, reject_dtype, check_dim, MinMax

if TYPE_CHECKING: from lazygrad.tensor import Tensor

_LN2 = math.log(2.0)
# atan's range reduction (Cephes atanf): tan(3pi/8) and tan(pi/8)
_TAN_3PI_8, _TAN_PI_8 = 2.414213562373095, 0.4142135623730950


def _atan_pos(x: Tensor) -> Tensor:
  """atan(x) for x >= 0 (Cephes atanf: reduce to |x| <= tan(pi/8), then a degree-9 odd polynomial; ~1 ulp in float32).
  Every branch gets a safe input (the double-where trick) so the unselected ones give no inf/nan gradient."""
  big, mid = x > _TAN_3PI_8, x > _TAN_PI_8
  xb = big.where(x, 1.0)                     # -1/x only where x is big
  xm = mid.where(x, 0.0)
  r = big.where(-1.0 / xb, mid.where((xm - 1.0) / (xm + 1.0), x))
  base = big.where(math.pi / 2, mid.where(math.pi / 4, 0.0))
  z = r * r
  poly = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * r + r
  return base + poly


def _odd(x: Tensor, fn) -> Tensor:
  """fn(|x|) with x's sign, for an odd fn: the wheres (not abs and sign) keep the gradient right at 0."""
  neg = x < 0
  r = fn(neg.where(-x, x))
  return neg.where(-r, r)


class ExtraMixin(TensorBase):
  """Tensor's methods composed from the other mixins' ops (see the module docstring); a mixin of the composed Tensor
  class, listed first so that its scatter/sort/argsort (with torch's extra arguments) wrap the base ones."""
  __slots__ = ()

  # ---- elementwise
  def neg(self) -> Tensor:
    """torch.neg (alias negative): -x; bools raise, as torch."""
    if self.dtype.is_bool: raise DTypeError("neg: not implemented for bool tensors (as torch; use ~ or logical_not)")
    return -self
  negative = neg
  def atan(self) -> Tensor:
    """torch.atan (alias arctan): Cephes' range reduction and polynomial (~1 ulp in float32; +-pi/2 at +-inf)."""
    return self._opmath(lambda x: _odd(x, _atan_pos))
  def asin(self) -> Tensor:
    """torch.asin (alias arcsin), as atan(x / sqrt((1 - x)(1 + x))): nan outside [-1, 1]."""
    return self._opmath(lambda x: _odd(x, lambda a: _atan_pos(a / ((1.0 - a) * (1.0 + a)).sqrt())))
  def acos(self) -> Tensor:
    """torch.acos (alias arccos), as 2 atan(sqrt((1 - x) / (1 + x))): no cancellation near 1, pi at -1, nan outside [-1, 1]."""
    return self._opmath(lambda x: 2.0 * _atan_pos(((1.0 - x) / (1.0 + x)).sqrt()))
  def sinh(self) -> Tensor:
    """torch.sinh, as (expm1(x) - expm1(-x)) / 2: accurate near 0; overflows to inf from |x| ~ 88.7 in float32
    (torch from ~89.4)."""
    return self._opmath(lambda x: (x.expm1() - (-x).expm1()) * 0.5)
  def cosh(self) -> Tensor:
    """torch.cosh, as (exp(x) + exp(-x)) / 2 (overflows to inf from |x| ~ 88.7 in float32, torch from ~89.4)."""
    return self._opmath(lambda x: (x.exp() + (-x).exp()) * 0.5)
  def asinh(self) -> Tensor:
    """torch.asinh (alias arcsinh): log1p(a + a^2 / (1 + sqrt(1 + a^2))) on a = |x| (accurate near 0), log(a) + log 2
    past 1e8 (where a^2 would overflow)."""
    def fn(a):
      big = a > 1e8
      s = big.where(1.0, a)   # a safe input for the unselected branch: no inf/nan gradient
      return big.where(a.log() + _LN2, (s + s * s / (1.0 + (1.0 + s * s).sqrt())).log1p())
    return self._opmath(lambda x: _odd(x, fn))
  def acosh(self) -> Tensor:
    """torch.acosh (alias arccosh): log1p((x - 1) + sqrt(x - 1) sqrt(x + 1)) (accurate near 1), log(x) + log 2 past 1e8;
    nan below 1."""
    def fn(x):
      big = x > 1e8
      s = big.where(1.0, x)
      return big.where(x.log() + _LN2, ((s - 1.0) + (s - 1.0).sqrt() * (s + 1.0).sqrt()).log1p())
    return self._opmath(fn)
  def atanh(self) -> Tensor:
    """torch.atanh (alias arctanh), as (log1p(x) - log1p(-x)) / 2: +-inf at +-1, nan outside [-1, 1]."""
    return self._opmath(lambda x: (x.log1p() - (-x).log1p()) * 0.5)
  arctan, arcsin, arccos, arcsinh, arccosh, arctanh = atan, asin, acos, asinh, acosh, atanh

  def _float_pair(self, op: str, other):
    """self and other (a Tensor or a number) cast to their common dtype, promoted to float as torch does for op."""
    if not isinstance(other, TensorBase): other = self._Tensor(other, device=self.device)
    dt = result_type(self, other)
    if not dt.is_float: dt = dtypes.float32
    return self.cast(dt), other.cast(dt)
  def copysign(self, other) -> Tensor:
    """torch.copysign: |self| with other's sign bit (-0 and -nan count as negative; read by a bitcast); ints give float.
    The gradient to self is +-1 (0 at self == 0, as torch), none to other."""
    x, y = self._float_pair("copysign", other)
    ints = {2: dtypes.int16, 4: dtypes.int32, 8: dtypes.int64}
    neg = y.detach().bitcast(ints[y.dtype.itemsize]) < 0
    a = x.abs()
    return neg.where(-a, a)
  def logaddexp(self, other) -> Tensor:
    """torch.logaddexp: log(exp(a) + exp(b)) = max + log1p(exp(-|a - b|)); equal arguments (infinities too) give a + log 2
    with half the gradient each, as torch."""
    a, b = self._float_pair("logaddexp", other)
    def fn(a, b):
      same = a == b
      d = same.where(0.0, a - b)   # inf - inf would be nan: the branch below is not taken there
      return same.where((a + b) * 0.5 + _LN2, a.maximum(b) + (-d.abs()).exp().log1p())
    if a.dtype.itemsize >= 4: return fn(a, b)
    return fn(a.float(), b.float()).cast(a.dtype)

  def clamp_min(self, min) -> Tensor:  # noqa: A002  (torch's name)
    """torch.clamp_min: clamp(min=min)."""
    return self.clamp(min=min)
  def clamp_max(self, max) -> Tensor:  # noqa: A002
    """torch.clamp_max: clamp(max=max)."""
    return self.clamp(max=max)

  # ---- cumulative ops along a dim (one (n, n) triangle, as cumsum: O(n^2) work along dim, fine for short dims)
  def _prefix_rows(self, d: int, fill):
    """x with dim d moved last, unsqueezed to (..., n_i, n_j) with x_j where j <= i and `fill` (a number or a tensor
    broadcastable to it) elsewhere, and the triangle itself."""
    x = self.transpose(d, -1)
    n = x.shape[-1]
    ar = self._Tensor.arange(n, device=self.device)
    tri = ar.reshape(n, 1) >= ar.reshape(1, n)
    return x, tri.where(x.unsqueeze(-2), fill), tri
  def logcumsumexp(self, dim) -> Tensor:
    """torch.logcumsumexp: the logsumexp of each prefix along dim, each stable around its own max (no underflow of
    early small terms)."""
    reject_dtype("logcumsumexp", self, int_=True)
    d = check_dim("logcumsumexp", dim, self.ndim)
    if self.ndim == 0 or self.shape[d] == 0: return self * 1.0
    _, rows, _ = self._prefix_rows(d, -math.inf)
    return rows.logsumexp(-1).transpose(d, -1)
  def _cum_extreme(self, op: str, dim, largest: bool):
    d = check_dim(op, dim, self.ndim)
    if self.ndim == 0: return MinMax(self * 1 if not self.dtype.is_bool else self, self._Tensor.zeros((), dtype=dtypes.int64, device=self.device))
    if self.shape[d] == 0: return MinMax(self, self._Tensor.zeros(self.shape, dtype=dtypes.int64, device=self.device))
    src = self.cast(dtypes.int8) if self.dtype.is_bool else self
    # fill with the row's first element: it is in every prefix, so the fill never changes the extreme
    first = src.detach().transpose(d, -1).narrow(-1, 0, 1).unsqueeze(-2)
    x, rows, tri = src.detach()._prefix_rows(d, first)
    ext = (rows.amax(-1) if largest else rows.amin(-1)).unsqueeze(-1)   # nan propagates, as torch
    match = (x.unsqueeze(-2) == ext) | (x.unsqueeze(-2).isnan() & ext.isnan()) if x.dtype.is_float else x.unsqueeze(-2) == ext
    n = x.shape[-1]
    j = self._Tensor.arange(n, device=self.device)
    # the last index of the extreme (or of a nan) in each prefix, as torch's cummax/cummin on ties
    idx = (tri & match).where(j, -1).amax(-1).transpose(d, -1).cast(dtypes.int64)
    return MinMax(self.gather(d, idx), idx)   # gather: the gradient goes to the returned index, as torch
  def cummax(self, dim):
    """torch.cummax: the named tuple (values, indices) of the running max along dim; ties take the latest index and a nan
    stays the max from where it appears, as torch; the gradient goes to the indices."""
    return self._cum_extreme("cummax", dim, True)
  def cummin(self, dim):
    """torch.cummin: the named tuple (values, indices) of the running min along dim (see cummax)."""
    return self._cum_extreme("cummin", dim, False)

  # ---- einsum: diagonals for repeated letters, then broadcast-multiply-sum (the scheduler sees a contraction)
  @staticmethod
  def einsum(equation: str, *operands) -> Tensor:
    """torch.einsum(equation, *operands): explicit ('ij,jk->ik') or implicit ('ij,jk': the letters seen once, sorted)
    output; a repeated letter within one operand takes its diagonal ('ii->i', 'ii' is the trace). Size-1 dims
    broadcast. No ellipsis. Composed as a broadcast multiply and a sum, so a matmul-like einsum is one contraction."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)): operands = tuple(operands[0])
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    specs = lhs.split(",")
    if "." in equation: raise ValueError(f"einsum: ellipsis ('...') is not supported ({equation!r})")
    if len(specs) != len(operands): raise ValueError(f"einsum: {equation!r} names {len(specs)} operands, got {len(operands)}")
    if not all(c.isalpha() for c in lhs.replace(",", "") + rhs): raise ValueError(f"einsum: {equation!r}: subscripts must be letters")
    seen = [c for spec in specs for c in spec]
    out = rhs if arrow else "".join(sorted(c for c in set(seen) if seen.count(c) == 1))
    if len(set(out)) != len(out) or any(c not in seen for c in out):
      raise ValueError(f"einsum: output subscripts {out!r} must be distinct letters of the inputs ({equation!r})")
    letters = sorted(set(seen))
    sizes, aligned = {}, []
    for spec, t in zip(specs, operands):
      if len(spec) != t.ndim:
        raise ShapeError(f"einsum: operand {t.shape} has {t.ndim} dims but its subscripts {spec!r} name {len(spec)}")
      while (dup := next((c for c in spec if spec.count(c) > 1), None)) is not None:
        i = spec.index(dup); j = spec.index(dup, i + 1)
        t, spec = t.diagonal(0, i, j), spec[:i] + spec[i + 1:j] + spec[j + 1:] + dup   # the diagonal becomes the last dim
      for c, n in zip(spec, t.shape):
        if sizes.get(c, 1) != 1 and n not in (1, sizes[c]):
          raise ShapeError(f"einsum: subscript {c!r} has size {sizes[c]} and {n} in {equation!r}")
        if n != 1 or c not in sizes: sizes[c] = n
      t = t.permute(*[spec.index(c) for c in letters if c in spec]) if t.ndim else t
      aligned.append(t.reshape(tuple(t.shape[[c for c in letters if c in spec].index(c)] if c in spec else 1 for c in letters)))
    prod = aligned[0]
    for t in aligned[1:]: prod = prod * t
    summed = tuple(i for i, c in enumerate(letters) if c not in out)
    kept = [c for c in letters if c in out]
    res = prod.sum(summed) if summed else prod
    return res.permute(*[kept.index(c) for c in out]) if len(out) > 1 else res

  def diagonal(self, offset=0, dim1=0, dim2=1) -> Tensor:
    """torch.diagonal: the diagonal at offset of the (dim1, dim2) planes, as a new last dim; a view (pad, reshape, shrink)."""
    if self.ndim < 2: raise ValueError(f"diagonal: needs at least 2 dims, got shape {self.shape}")
    d1, d2 = check_dim("diagonal", dim1, self.ndim), check_dim("diagonal", dim2, self.ndim)
    if d1 == d2: raise ValueError(f"diagonal: dim1 and dim2 cannot be the same dim ({d1}) (shape {self.shape})")
    rest = [i for i in range(self.ndim) if i not in (d1, d2)]
    x = self.permute(*rest, d1, d2)
    a, b = x.shape[-2:]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    n = max(0, min(a - r0, b - c0))
    lead = x.shape[:-2]
    x = x.shrink(tuple((0, s) for s in lead) + ((r0, r0 + n), (c0, c0 + n)))
    # the n x n block flattened, padded by n, read as (n, n + 1): column 0 is the diagonal
    x = x.reshape(*lead, n * n)._movement(Ops.PAD, ((0, 0),) * len(lead) + ((0, n),)).reshape(*lead, n, n + 1)
    return x.shrink(tuple((0, s) for s in lead) + ((0, n), (0, 1))).reshape(*lead, n)
  def diag(self, diagonal=0) -> Tensor:
    """torch.diag: a 1-D input gives the square matrix with it on the given diagonal, a 2-D input its diagonal."""
    if self.ndim == 2: return self.diagonal(diagonal)
    if self.ndim != 1: raise ValueError(f"diag: expects a 1-D or 2-D tensor, got shape {self.shape}")
    n, k = self.shape[0], abs(diagonal)
    ar = self._Tensor.arange(n, device=self.device)
    m = (ar.reshape(n, 1) == ar.reshape(1, n)).where(self.reshape(1, n), self._Tensor.zeros((), dtype=self.dtype, device=self.device))
    return m._movement(Ops.PAD, ((0, k), (k, 0)) if diagonal >= 0 else ((k, 0), (0, k)))
  def roll(self, shifts, dims=None) -> Tensor:
    """torch.roll: shift the elements along dims (wrapping around); dims=None rolls the flattened tensor."""
    if dims is None:
      if isinstance(shifts, (tuple, list)) and len(shifts) != 1: raise ValueError(f"roll: {len(shifts)} shifts need as many dims")
      return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shifts) != len(dims): raise ValueError(f"roll: {len(shifts)} shifts and {len(dims)} dims differ in number")
    x = self
    for s, dim in zip(shifts, dims):
      d = check_dim("roll", dim, self.ndim)
      n = x.shape[d] if x.ndim else 1
      if x.ndim == 0 or n == 0 or s % n == 0: continue
      s %= n
      x = self._Tensor.cat([x.narrow(d, n - s, s), x.narrow(d, 0, n - s)], d)
    return x
  def unfold(self, dimension, size, step) -> Tensor:
    """torch.Tensor.unfold: the windows of `size` along dimension, `step` apart, in a new last dim (the dim becomes the
    window count); strided slices stacked, so a view-like composition (gradients add where windows overlap)."""
    d = check_dim("unfold", dimension, self.ndim)
    n = self.shape[d] if self.ndim else 1
    if step <= 0: raise ValueError(f"unfold: step must be positive, got {step}")
    if size < 0 or size > n: raise ValueError(f"unfold: size {size} exceeds the size {n} of dim {d} (shape {self.shape})")
    x = self.reshape(1) if self.ndim == 0 else self
    count = (n - size) // step + 1
    parts = [x[(slice(None),) * d + (slice(k, k + step * (count - 1) + 1, step),)] for k in range(size)]
    if not parts: return self._Tensor.zeros(x.shape[:d] + (count,) + x.shape[d + 1:] + (0,), dtype=self.dtype, device=self.device)
    out = self._Tensor.stack(parts, -1)
    return out.reshape(size) if self.ndim == 0 else out

  def nonzero(self, as_tuple=False):
    """torch.nonzero: int64 (count, ndim) coordinates of the nonzero elements (as_tuple: one 1-D tensor per dim). The
    shape depends on the data, so it realizes and computes on the host (a device sync); not differentiable."""
    idx = np.argwhere(self.numpy()).astype(np.int64)
    if as_tuple:
      if self.ndim == 0: return (self._Tensor(idx[:, 0] if idx.shape[1] else np.zeros(len(idx), np.int64), device=self.device),)
      return tuple(self._Tensor(np.ascontiguousarray(idx[:, k]), device=self.device) for k in range(self.ndim))
    return self._Tensor(idx, device=self.device)

  # ---- scatter with a reduction
  def scatter_reduce(self, dim, index, src, reduce, include_self=True) -> Tensor:
    """torch.scatter_reduce (not in place): src combined with self into the positions index gives along dim, by reduce
    ("sum", "prod", "mean", "amax", "amin"); include_self=False leaves self out where something is written. One-hot
    compare and a reduction over the source positions. amax/amin share the gradient among tied values (torch: evenly
    among all ties; here a tie between self and several sources gives self half)."""
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
      raise ValueError(f"scatter_reduce: reduce must be one of sum, prod, mean, amax, amin, got {reduce!r}")
    d = check_dim("scatter_reduce", dim, self.ndim)
    if not isinstance(index, TensorBase) or index.dtype.is_float: raise DTypeError("scatter_reduce: index must be an integer Tensor")
    if not isinstance(src, TensorBase): raise TypeError(f"scatter_reduce: src must be a Tensor, got {type(src).__name__}")
    if index.ndim != self.ndim or src.ndim != self.ndim or any(i > s for i, s in zip(index.shape, src.shape)) or \
       any(i > s for k, (i, s) in enumerate(zip(index.shape, self.shape)) if k != d):
      raise ShapeError(f"scatter_reduce: index {index.shape}, src {src.shape} and input {self.shape} do not fit along dim {d}")
    if index.numel() == 0: return self   # nothing written (torch returns a copy; lazygrad values never alias writes)
    src = src.cast(self.dtype).shrink(tuple((0, s) for s in index.shape))
    hit = index._one_hot_along(self.shape[d], "scatter_reduce", dim=d)   # (*index.shape, n)
    pad = tuple((0, s - c) for s, c in zip(self.shape, index.shape[:d] + (self.shape[d],) + index.shape[d + 1:]))
    def to_self(t):   # (*index.shape with n at d moved last) reduced over d -> self's layout, padded
      return t.transpose(d, -1).squeeze(-1)._movement(Ops.PAD, pad)
    count = to_self(hit.cast(dtypes.int64).sum(d, keepdim=True))
    written = count > 0
    s = src.unsqueeze(-1)
    if reduce in ("sum", "mean"): new = to_self(hit.where(s, 0).sum(d, keepdim=True).cast(self.dtype))
    elif reduce == "prod": new = to_self(hit.where(s, 1).prod(d, keepdim=True).cast(self.dtype))
    else:
      fill = (-math.inf if reduce == "amax" else math.inf) if self.dtype.is_float else \
        (np.iinfo(self.dtype.np).min if reduce == "amax" else np.iinfo(self.dtype.np).max)
      r = hit.where(s, fill)
      new = to_self(r.amax(d, keepdim=True) if reduce == "amax" else r.amin(d, keepdim=True))
    if include_self:
      if reduce == "sum": new = self + new
      elif reduce == "prod": new = self * new
      elif reduce == "mean": new, count = self + new, count + 1
      else: new = self.maximum(new) if reduce == "amax" else self.minimum(new)
    if reduce == "mean":
      c = written.where(count, 1)
      new = new / c if self.dtype.is_float else (new.float() / c).floor().cast(self.dtype)   # ints: floor division, as torch
    return written.where(new, self)
  def scatter(self, dim, index, src=None, value=None, reduce=None) -> Tensor:
    """torch.scatter (not in place): src (a Tensor, or value / a number for every position) written where index points
    along dim; reduce="add"/"multiply" combines with self instead, as torch. Without reduce, repeated positions sum
    their values (torch keeps an unspecified one)."""
    if src is None: src = value
    if reduce is None: return super().scatter(dim, index, src)
    if reduce not in ("add", "multiply"): raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
    if not isinstance(src, TensorBase):
      if not isinstance(index, TensorBase): raise DTypeError("scatter: index must be an integer Tensor")
      src = self._Tensor.full(index.shape, src, dtype=self.dtype, device=self.device)
    return self.scatter_reduce(dim, index, src, "sum" if reduce == "add" else "prod")

  def view(self, *shape) -> Tensor:
    """torch.Tensor.view: view(*shape) reshapes; view(dtype) reinterprets the bits as a same-size dtype (bitcast), as
    torch (a different-size dtype raises: lazygrad does not rescale the last dim)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)):
      dtype = dtypes.from_any(shape[0])
      if dtype.itemsize != self.dtype.itemsize:
        raise ValueError(f"view: {self.dtype.name} -> {dtype.name} changes the element size (lazygrad views same-size dtypes only)")
      return self.bitcast(dtype)
    return super().view(*shape)

  # ---- sort with torch's stable= (lazygrad's host sort is always stable)
  def argsort(self, dim=-1, descending=False, stable=False) -> Tensor:
    """torch.argsort; stable= is accepted: lazygrad's sort is always stable (ties keep index order)."""
    return super().argsort(dim, descending)
  def sort(self, dim=-1, descending=False, stable=False):
    """torch.sort; stable= is accepted: lazygrad's sort is always stable (ties keep index order)."""
    return super().sort(dim, descending)
