"""Movement and indexing, composed from RESHAPE/PERMUTE/EXPAND/PAD/SHRINK/FLIP (views)."""
from __future__ import annotations
import itertools
import os
import sys
from typing import TYPE_CHECKING
import numpy as np
from lazygrad.ops import Ops, CheckSite
from lazygrad.ops.gather import source_view, gather_view_ok
from lazygrad.dtype import dtypes, result_type
from lazygrad.helpers import argfix, prod
from lazygrad.tensor_base import TensorBase, IndexError_, IndexTypeError, ShapeError, DTypeError, broadcast_shape, check_dim as _dim

if TYPE_CHECKING: from lazygrad.tensor import Tensor

TypeError_ = IndexTypeError   # torch's IndexError, lazygrad's earlier TypeError
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_check_seq = itertools.count()


def user_line() -> str:
  """`file:line (function)` of the innermost frame outside the lazygrad package: the user's line that built an op."""
  f = sys._getframe(1)
  while f is not None and f.f_code.co_filename.startswith(_PACKAGE_DIR): f = f.f_back
  return "<unknown>" if f is None else f"{f.f_code.co_filename}:{f.f_lineno} ({f.f_code.co_name})"


class IndexMixin(TensorBase):
  """Tensor's movement and indexing (reshape, permute, expand, pad, cat, stack, split, gather, scatter_add, ...)."""
  __slots__ = ()
  # ---- movement
  def reshape(self, *shape) -> Tensor:
    """torch.reshape: shape as varargs or a tuple, one dim may be -1; a view in the lazy graph (never a copy until realized)."""
    shape = argfix(*shape)
    for s in shape:
      if not isinstance(s, (int, np.integer)) or isinstance(s, bool): raise TypeError(f"reshape: shape must be ints, got {shape}")
    if sum(1 for s in shape if s == -1) > 1: raise ShapeError(f"reshape: only one dim can be -1, got {shape}")
    if any(s < -1 for s in shape): raise ShapeError(f"reshape: invalid shape {shape}")
    if -1 in shape:
      known = prod(s for s in shape if s != -1)
      if known == 0 or self.numel() % known: raise ShapeError(f"reshape: shape {shape} is invalid for input of shape {self.shape}")
      shape = tuple(self.numel() // known if s == -1 else s for s in shape)
    shape = tuple(int(s) for s in shape)
    if prod(shape) != self.numel(): raise ShapeError(f"reshape: shape {shape} is invalid for input of shape {self.shape} ({self.numel()} elements)")
    return self._movement(Ops.RESHAPE, shape)
  def view(self, *shape) -> Tensor:
    """torch.Tensor.view(*shape): reshape (always a view here). view(dtype), a bitcast, is tensor_extra.py's override."""
    return self.reshape(*shape)
  def reshape_as(self, other) -> Tensor:
    """torch.Tensor.reshape_as: reshape to other.shape."""
    return self.reshape(other.shape)
  def view_as(self, other) -> Tensor:
    """torch.Tensor.view_as: reshape to other.shape."""
    return self.reshape(other.shape)

  def permute(self, *dims) -> Tensor:
    """torch.permute: reorder the dims (varargs or a tuple); a view."""
    dims = argfix(*dims)
    if len(dims) != self.ndim: raise ShapeError(f"permute: {len(dims)} dims given for a tensor of shape {self.shape}")
    order = tuple(_dim("permute", d, self.ndim) for d in dims)
    if sorted(order) != list(range(self.ndim)): raise ShapeError(f"permute: {dims} is not a permutation of the dims of {self.shape}")
    return self._movement(Ops.PERMUTE, order)
  def transpose(self, dim0=-2, dim1=-1) -> Tensor:
    """torch.transpose: swap two dims (defaults -2, -1, which torch requires you to give); a view."""
    if self.ndim == 0: return self
    a, b = _dim("transpose", dim0, self.ndim), _dim("transpose", dim1, self.ndim)
    order = list(range(self.ndim))
    order[a], order[b] = order[b], order[a]
    return self.permute(order)
  def t(self) -> Tensor:
    """torch.t: transpose a tensor of at most 2 dims."""
    if self.ndim > 2: raise ValueError(f"t: expects a tensor of at most 2 dims, got {self.shape}")
    return self.T
  def swapaxes(self, a, b):
    """torch.swapaxes: transpose(a, b)."""
    return self.transpose(a, b)
  def movedim(self, source, destination) -> Tensor:
    """torch.movedim: move dim(s) source (an int or a tuple) to position(s) destination; the other dims keep their order; a view."""
    src = tuple(source) if isinstance(source, (tuple, list)) else (source,)
    dst = tuple(destination) if isinstance(destination, (tuple, list)) else (destination,)
    if len(src) != len(dst): raise ValueError(f"movedim: source {source} and destination {destination} have different lengths")
    src, dst = [_dim("movedim", s, self.ndim) for s in src], [_dim("movedim", d, self.ndim) for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst): raise ValueError(f"movedim: repeated dim in {source} or {destination}")
    if self.ndim == 0: return self
    order, rest = [-1] * self.ndim, iter(i for i in range(self.ndim) if i not in src)
    for s, d in zip(src, dst): order[d] = s
    return self.permute([o if o >= 0 else next(rest) for o in order])

  def expand(self, *shape) -> Tensor:
    """torch.expand: broadcast size-1 dims (and new leading dims) to shape; -1 keeps a size; a view, no copy."""
    shape = argfix(*shape)
    if len(shape) < self.ndim: raise ShapeError(f"expand: target {shape} has fewer dims than the tensor's shape {self.shape}")
    cur = (1,) * (len(shape) - self.ndim) + self.shape
    new = []
    for i, (c, s) in enumerate(zip(cur, shape)):
      if s == -1:
        if i < len(shape) - self.ndim: raise ShapeError(f"expand: -1 is not allowed in a new leading dim, got {shape}")
        s = c
      if c != s and c != 1:
        raise ShapeError(f"expand: the expanded size {s} must match the existing size {c} at dim {i} (shape {self.shape} to {shape})")
      new.append(s)
    return self._broadcast_to(tuple(new))
  def expand_as(self, other):
    """torch.expand_as: expand to other.shape."""
    return self.expand(other.shape)
  def broadcast_to(self, shape):
    """torch.broadcast_to: expand to shape."""
    return self.expand(shape)

  def flatten(self, start_dim=0, end_dim=-1) -> Tensor:
    """torch.flatten: merge dims start_dim..end_dim into one (a 0-d tensor becomes shape (1,))."""
    if self.ndim == 0: return self.reshape(1)
    s, e = _dim("flatten", start_dim, self.ndim), _dim("flatten", end_dim, self.ndim)
    if s > e: raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return self.reshape(self.shape[:s] + (prod(self.shape[s:e + 1]),) + self.shape[e + 1:])
  def unflatten(self, dim, sizes) -> Tensor:
    """torch.unflatten: split dim into sizes (their product must be the dim's size)."""
    d = _dim("unflatten", dim, self.ndim)
    return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])
  def unsqueeze(self, dim) -> Tensor:
    """torch.unsqueeze: insert a size-1 dim at dim (dim may be ndim or -ndim-1)."""
    d = _dim("unsqueeze", dim, self.ndim + 1)
    return self.reshape(self.shape[:d] + (1,) + self.shape[d:])
  def squeeze(self, dim=None) -> Tensor:
    """torch.squeeze: drop size-1 dims: all of them, or those in dim (an int or a tuple); other dims are left alone."""
    if dim is None: return self.reshape(tuple(s for s in self.shape if s != 1))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if self.ndim == 0: return self
    axes = {_dim("squeeze", d, self.ndim) for d in dims}
    return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1)))

  def flip(self, *dims) -> Tensor:
    """torch.flip: reverse the given dims (varargs or a tuple); a copy as torch's (writes to it stay in it), free in the lazy graph."""
    dims = argfix(*dims)
    axes = tuple(_dim("flip", d, self.ndim) for d in dims)
    if len(set(axes)) != len(axes): raise ShapeError(f"flip: dims {dims} repeat")
    return self._movement(Ops.FLIP, tuple(sorted(axes)))._copy()

  def shrink(self, arg) -> Tensor:
    """Per dim (start, end) or None (keep)."""
    arg = tuple((0, s) if a is None else tuple(a) for a, s in zip(arg, self.shape))
    return self._movement(Ops.SHRINK, arg)

  def pad(self, padding, value=0.0, mode="constant") -> Tensor:
    """torch.nn.functional.pad ordering: (left, right) of the last dim first; negative pads crop."""
    if mode != "constant": raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    padding = tuple(padding)
    if len(padding) % 2 or len(padding) // 2 > self.ndim:
      raise ShapeError(f"pad: padding {padding} must have an even length of at most 2*ndim for shape {self.shape}")
    pairs = [(0, 0)] * self.ndim
    for i in range(len(padding) // 2): pairs[self.ndim - 1 - i] = (padding[2 * i], padding[2 * i + 1])
    # negative pads crop first
    crop = tuple((-min(b, 0), s + min(a, 0)) for (b, a), s in zip(pairs, self.shape))
    if any(hi < lo for lo, hi in crop): raise ValueError(f"pad: padding {padding} crops more than shape {self.shape}")
    x = self._movement(Ops.SHRINK, crop)
    grow = tuple((max(b, 0), max(a, 0)) for b, a in pairs)
    if all(p == (0, 0) for p in grow): return x._copy()   # a copy, as torch: not a view of self
    out = x._movement(Ops.PAD, grow)
    if value == 0: return out._copy()
    # PAD fills with 0; the rest of the pad value comes from a mask of where the data is
    inside = self._Tensor.full(x.shape, True, dtype=dtypes.bool, device=x.device)._movement(Ops.PAD, grow)
    return inside.where(out, value).cast(self.dtype)   # the value takes the tensor's dtype, as torch

  def repeat(self, *repeats) -> Tensor:
    """torch.Tensor.repeat: tile the tensor repeats[i] times along each dim (extra leading repeats add dims); built from expand and reshape."""
    repeats = argfix(*repeats)
    if len(repeats) < self.ndim: raise ShapeError(f"repeat: {len(repeats)} repeats for a tensor of {self.ndim} dims")
    if any(not isinstance(r, (int, np.integer)) or r < 0 for r in repeats):
      raise ShapeError(f"repeat: repeats {repeats} must be non-negative ints (shape {self.shape})")
    base = self.reshape((1,) * (len(repeats) - self.ndim) + self.shape)
    shape = base.shape
    x = base.reshape(tuple(v for s in shape for v in (1, s)))
    x = x.expand(tuple(v for r, s in zip(repeats, shape) for v in (r, s)))
    return x.reshape(tuple(r * s for r, s in zip(repeats, shape)))._copy()   # a copy, as torch: not a view of self
  def tile(self, *reps):
    """torch.tile, here the same as repeat: unlike torch.tile, fewer reps than dims is an error rather than padded with 1s."""
    return self.repeat(*reps)

  def narrow(self, dim, start, length) -> Tensor:
    """torch.narrow: length elements of dim from start (negative start counts from the end); a view."""
    d = _dim("narrow", dim, self.ndim)
    if start < 0: start += self.shape[d]
    if not 0 <= start <= start + length <= self.shape[d]:
      raise ShapeError(f"narrow: [{start}, {start + length}) out of range for dim {d} of {self.shape}")
    return self.shrink(tuple((start, start + length) if i == d else None for i in range(self.ndim)))

  def _slice_dim(self, d: int, start: int, stop: int, step: int) -> Tensor:
    """x[start:stop:step] along d with normalized bounds, as views."""
    n = self.shape[d]
    if step < 0:
      # a negative step reads the flipped dim forward
      x = self._movement(Ops.FLIP, (d,))   # a view, as numpy's negative steps (torch has none)
      return x._slice_dim(d, n - 1 - start, n - 1 - stop, -step)
    stop = max(stop, start)
    x = self.shrink(tuple((start, stop) if i == d else None for i in range(self.ndim)))
    if step == 1: return x
    length = stop - start
    o = -(-length // step)
    if length % step:
      # take a few real elements past stop when they exist, else pad
      extra = o * step - length
      if stop + extra <= n: x = self.shrink(tuple((start, stop + extra) if i == d else None for i in range(self.ndim)))
      else: x = x._movement(Ops.PAD, tuple((0, extra) if i == d else (0, 0) for i in range(self.ndim)))
    sh = x.shape
    x = x.reshape(sh[:d] + (o, step) + sh[d + 1:])
    x = x.shrink(tuple((0, 1) if i == d + 1 else None for i in range(x.ndim)))
    return x.reshape(sh[:d] + (o,) + sh[d + 1:])

  # ---- indexing
  def _bounds(self, lo: int, hi: int, op: str, what: str = "index", dim=None) -> Tensor:
    """self (integer indices) unchanged, checked in the kernel that reads it: a value outside [lo, hi) makes the
    realize that computes it raise IndexError naming op, the value, the size hi and the user's line (Ops.CHECK).
    An index already checked as tightly is returned as it is (one check per value, the first op's name)."""
    n = self.node
    if n.op is Ops.CHECK and lo <= n.arg[0] and n.arg[1] <= hi: return self
    if self.numel() == 0: return self
    t = self._new(Ops.CHECK, (n,), (lo, hi), self.shape, self.dtype)
    t.node.origin = CheckSite(op, what, dim, hi, user_line(), next(_check_seq))
    return t

  def __getitem__(self, idx) -> Tensor:
    Tensor = self._Tensor
    idx = idx if isinstance(idx, tuple) else (idx,)
    # lists and bool masks become integer tensors
    norm = []
    host: dict = {}   # id(index tensor) -> what we know on the host, checked once its dim is known
    for i in idx:
      if isinstance(i, (list, np.ndarray)):
        arr = np.asarray(i)
        i = Tensor(arr, device=self.device)
        if arr.dtype.kind in 'iu' and arr.size: host[id(i)] = ("ints", int(arr.min()), int(arr.max()))
      if isinstance(i, Tensor) and i.dtype.is_bool:
        parts = [Tensor(a, device=self.device) for a in np.nonzero(i.numpy())]
        if parts: host[id(parts[0])] = ("mask", i.shape)
        norm.extend(parts)
        continue
      norm.append(i)
    n_real = sum(1 for i in norm if i is not None and i is not Ellipsis)
    if n_real > self.ndim: raise IndexError_(f"index: too many indices ({n_real}) for a tensor of shape {self.shape}")
    if sum(1 for i in norm if i is Ellipsis) > 1: raise IndexError_("index: an index can only have a single ellipsis")
    if Ellipsis in [i for i in norm if not isinstance(i, Tensor)]:
      pos = next(k for k, i in enumerate(norm) if i is Ellipsis and not isinstance(i, Tensor))
      norm = norm[:pos] + [slice(None)] * (self.ndim - n_real) + norm[pos + 1:]
    norm += [slice(None)] * (self.ndim - sum(1 for i in norm if i is not None))
    x, d, tensor_dims, squeeze = self, 0, [], []
    for i in norm:
      if i is None:
        x = x.unsqueeze(d); d += 1; continue
      if isinstance(i, bool): raise TypeError_("index: bool scalars are not supported as indices")
      if isinstance(i, (int, np.integer)):
        n = x.shape[d]
        if not -n <= i < n: raise IndexError_(f"index: {i} is out of bounds for dim {d} with size {n} (shape {self.shape})")
        i = int(i) + (n if i < 0 else 0)
        x = x.shrink(tuple((i, i + 1) if k == d else None for k in range(x.ndim)))
        squeeze.append(d); d += 1; continue
      if isinstance(i, slice):
        start, stop, step = i.indices(x.shape[d])
        if step == 0: raise ValueError("index: slice step cannot be zero")
        x = x._slice_dim(d, start, stop, step)
        d += 1; continue
      if isinstance(i, Tensor):
        if i.dtype.is_float: raise TypeError_(f"index: tensors used as indices must be integer or bool, got {i.dtype}")
        known = host.get(id(i))
        if known is not None and known[0] == "mask" and tuple(x.shape[d:d + len(known[1])]) != tuple(known[1]):
          raise IndexError_(f"index: the shape of the mask {known[1]} does not match the indexed dims {x.shape[d:d + len(known[1])]} "
                            f"of shape {self.shape}")
        if known is not None and known[0] == "ints" and not -x.shape[d] <= known[1] <= known[2] < x.shape[d]:
          bad = known[2] if known[2] >= x.shape[d] else known[1]
          raise IndexError_(f"index: {bad} is out of bounds for dim {d} with size {x.shape[d]} (shape {self.shape})")
        tensor_dims.append((d, i)); d += 1; continue
      raise TypeError_(f"index: unsupported index type {type(i).__name__}")
    if squeeze:
      keep = [k for k in range(x.ndim) if k not in squeeze]
      x = x.reshape(tuple(x.shape[k] for k in keep))
      remap = {k: n for n, k in enumerate(keep)}
      tensor_dims = [(remap[k], t) for k, t in tensor_dims]
    if tensor_dims: x = x._advanced_index(tensor_dims)
    return x

  def _advanced_index(self, tensor_dims, op: str = "index", negative: bool = True) -> Tensor:
    """x[..., idx, ...] with integer tensors: one GATHER over the indexed dims flattened into one (a flat index
    sum(idx_j * stride_j)). Each index is bounds-checked in the kernel (op names the caller); negative indices count
    from the end when `negative`."""
    dims = [d for d, _ in tensor_dims]
    bshape = broadcast_shape("index", *[t.shape for _, t in tensor_dims])
    rest = [d for d in range(self.ndim) if d not in dims]
    sizes, rshape = [self.shape[d] for d in dims], tuple(self.shape[d] for d in rest)
    nb, nr, k = len(bshape), len(rest), len(dims)
    flat = None
    for j, (d, t) in enumerate(tensor_dims):
      n = self.shape[d]
      t = t._bounds(-n if negative else 0, n, op, "index", d)
      if k > 1 or t.dtype not in (dtypes.int32, dtypes.int64): t = t.cast(dtypes.int64)   # a flat index needs 64 bits
      if negative: t = (t < 0).where(t + n, t).cast(t.dtype)
      t = t * prod(sizes[j + 1:]) if j < k - 1 else t
      flat = t if flat is None else flat + t
    # (1.., N, rest..) gathered along N by the flat index broadcast over rest: (bshape.., 1, rest..)
    x = self.permute(dims + rest).reshape((1,) * nb + (prod(sizes),) + rshape)
    idx = flat._broadcast_to(bshape).reshape(bshape + (1,) + (1,) * nr)._broadcast_to(bshape + (1,) + rshape)
    picked = x._gather_prim(nb, idx).reshape(bshape + rshape)
    # numpy's rule: adjacent index tensors put their dims where they were, else in front
    if dims == list(range(dims[0], dims[0] + k)) and dims[0] > 0:
      order = list(range(nb, nb + dims[0])) + list(range(nb)) + list(range(nb + dims[0], nb + nr))
      picked = picked.permute(order)
    return picked

  # ---- the indexed primitives (ops/gather.py)
  def _gather_prim(self, dim: int, index: Tensor) -> Tensor:
    """GATHER: out[o] = self[o with o[dim] := index[o]]. index (in range and non-negative: the caller checks and wraps
    it) has the output's shape; self has it too except along dim and where self is 1 (read broadcast). A source read
    through views a gather cannot index (several views, a mask along dim) is copied first."""
    src = self
    if not gather_view_ok(source_view(src.node)[1], dim): src = src.contiguous()
    if index.dtype not in (dtypes.int32, dtypes.int64): index = index.cast(dtypes.int64)
    return src._new(Ops.GATHER, (src.node, index.node), dim, index.shape, self.dtype)

  def _scatter_add_prim(self, dim: int, index: Tensor, shape) -> Tensor:
    """SCATTER_ADD: zeros(shape) with self (values of index's shape) added at index along dim; dims where shape is 1
    and index is not are summed over. The gradient of _gather_prim. When each output row along dim gets at most one
    value (index is 1 along dim, nothing summed over), it is the one-hot select where(index == arange, self, 0):
    elementwise, so it fuses into its reader (cross-entropy's gradient) instead of a kernel of its own."""
    shape, n = tuple(shape), shape[dim]
    if index.shape[dim] == 1 and all(s == i for d, (s, i) in enumerate(zip(shape, index.shape)) if d != dim):
      ar = self._Tensor.arange(n, device=self.device).reshape((1,) * dim + (n,) + (1,) * (len(shape) - dim - 1))
      return index.eq(ar).where(self, 0).cast(self.dtype)
    if index.dtype not in (dtypes.int32, dtypes.int64): index = index.cast(dtypes.int64)
    return self._new(Ops.SCATTER_ADD, (index.node, self.node), (dim, shape), shape, self.dtype)

  # ---- joining and splitting
  @staticmethod
  def cat(tensors, dim=0) -> Tensor:
    """torch.cat (alias concatenate): join along an existing dim with dtype promotion; empty 1-D tensors are skipped, as torch.
    Built as padded views summed, so the scheduler can fuse the pieces into one kernel."""
    tensors = list(tensors)
    if not tensors: raise ValueError("cat: expects a non-empty list of tensors")
    if not all(isinstance(t, TensorBase) for t in tensors): raise TypeError("cat: expects a sequence of Tensors")
    dt = result_type(*tensors)   # before dropping the empty ones: they promote too, as torch
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    ref = tensors[0]
    d = _dim("cat", dim, ref.ndim)
    for t in tensors:
      if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != d):
        raise ShapeError(f"cat: shapes {[t.shape for t in tensors]} do not match except in dim {d}")
    total = sum(t.shape[d] for t in tensors)
    out, off = None, 0
    for t in tensors:
      pad = tuple((off, total - off - t.shape[d]) if i == d else (0, 0) for i in range(ref.ndim))
      p = t.cast(dt)._movement(Ops.PAD, pad)
      out = p if out is None else out + p
      off += t.shape[d]
    return out._copy()   # one tensor's cat is a pad of it: a copy, as torch, not a view
  concatenate = cat

  @staticmethod
  def stack(tensors, dim=0) -> Tensor:
    """torch.stack: join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors: raise ValueError("stack: expects a non-empty list of tensors")
    if any(t.shape != tensors[0].shape for t in tensors):
      raise ShapeError(f"stack: all tensors need the same shape, got {[t.shape for t in tensors]}")
    d = _dim("stack", dim, tensors[0].ndim + 1)
    return TensorBase._Tensor.cat([t.unsqueeze(d) for t in tensors], d)

  def split(self, split_size, dim=0) -> list:
    """torch.split: pieces of split_size (the last may be smaller) or of the listed sizes along dim; views."""
    d = _dim("split", dim, self.ndim)
    n = self.shape[d]
    if isinstance(split_size, int):
      if split_size <= 0: raise ValueError(f"split: split_size must be positive, got {split_size}")
      sizes = [min(split_size, n - i) for i in range(0, n, split_size)] or [0]
    else:
      sizes = list(split_size)
      if sum(sizes) != n: raise ShapeError(f"split: sizes {sizes} do not sum to {n} (dim {d} of {self.shape})")
    out, off = [], 0
    for s in sizes:
      out.append(self.narrow(d, off, s)); off += s
    return out
  def chunk(self, chunks: int, dim=0) -> list:
    """torch.chunk: at most `chunks` pieces of equal size (the last may be smaller) along dim; views."""
    if chunks <= 0: raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
    d = _dim("chunk", dim, self.ndim)
    return self.split(max(1, -(-self.shape[d] // chunks)), d)
  def unbind(self, dim=0) -> list:
    """torch.unbind: the slices along dim, with dim removed, as a list of views."""
    d = _dim("unbind", dim, self.ndim)
    return [self.narrow(d, i, 1).squeeze(d) for i in range(self.shape[d])]

  def _one_hot_along(self, n: int, op: str = "index", what: str = "index", dim=None) -> Tensor:
    """(self == arange(n)) with the arange along a new trailing dim; self is bounds-checked to [0, n) (op names the caller)."""
    self = self._bounds(0, n, op, what, dim)
    return self.unsqueeze(-1).eq(self._Tensor.arange(n, device=self.device).reshape((1,) * self.ndim + (n,)))

  def gather(self, dim, index) -> Tensor:
    """torch.gather: out[i][j] = self[index[i][j]][j] (for dim 0) etc.; index may be smaller than self outside dim.
    One GATHER (a load at the computed address, fused into the reader), bounds-checked in the kernel."""
    if not isinstance(index, TensorBase) or index.dtype.is_float: raise DTypeError("gather: index must be an integer Tensor")
    d = _dim("gather", dim, self.ndim)
    if index.ndim != self.ndim or any(i > s for k, (i, s) in enumerate(zip(index.shape, self.shape)) if k != d):
      raise ShapeError(f"gather: index of shape {index.shape} does not fit input of shape {self.shape} along dim {d}")
    x = self.shrink(tuple((0, i) if k != d else None for k, i in enumerate(index.shape)))
    return x._gather_prim(d, index._bounds(0, self.shape[d], "gather", dim=d))

  def scatter_add(self, dim, index, src) -> Tensor:
    """torch.scatter_add (not in place): self plus src summed into the positions index gives along dim. Floats: one
    SCATTER_ADD (a scatter-add kernel); integers: a one-hot compare and sum."""
    d = _dim("scatter_add", dim, self.ndim)
    if not isinstance(index, TensorBase) or index.dtype.is_float: raise DTypeError("scatter_add: index must be an integer Tensor")
    if index.ndim != self.ndim or src.ndim != self.ndim or any(i > s for i, s in zip(index.shape, src.shape)) or \
       any(i > s for k, (i, s) in enumerate(zip(index.shape, self.shape)) if k != d):
      raise ShapeError(f"scatter_add: index {index.shape}, src {src.shape} and input {self.shape} do not fit along dim {d}")
    src = src.shrink(tuple((0, s) for s in index.shape))
    pad = tuple((0, s - c) for s, c in zip(self.shape, index.shape[:d] + (self.shape[d],) + index.shape[d + 1:]))
    if self.dtype.is_float and index.numel():
      idx = index._bounds(0, self.shape[d], "scatter_add", dim=d)
      contrib = src.cast(self.dtype)._scatter_add_prim(d, idx, index.shape[:d] + (self.shape[d],) + index.shape[d + 1:])
      return self + contrib._movement(Ops.PAD, pad)
    hit = index._one_hot_along(self.shape[d], "scatter_add", dim=d)   # (*index.shape, n)
    contrib = hit.where(src.unsqueeze(-1), 0).sum(d, keepdim=True, dtype=self.dtype if self.dtype.is_float else None)
    contrib = contrib.transpose(d, -1).squeeze(-1)           # n lands in dim d
    return self + contrib._movement(Ops.PAD, pad).cast(self.dtype)

  def one_hot(self, num_classes: int = -1) -> Tensor:
    """F.one_hot: int64 (..., num_classes); num_classes=-1 reads the max value, which realizes (a host sync)."""
    if self.dtype.is_float: raise DTypeError(f"one_hot: expects an integer tensor, got {self.dtype}")
    if num_classes == -1: num_classes = int(self.max().item()) + 1
    return self._one_hot_along(num_classes, "one_hot", "class value").cast(dtypes.int64)

  def scatter(self, dim, index, src) -> Tensor:
    """torch.scatter (not in place): self with src (a Tensor, or a number for every position) written where index
    points along dim; one-hot compare and sum. Where index repeats a position the values written there are summed
    (torch keeps one of them, which one is unspecified)."""
    d = _dim("scatter", dim, self.ndim)
    if not isinstance(index, TensorBase) or index.dtype.is_float: raise DTypeError("scatter: index must be an integer Tensor")
    if not isinstance(src, TensorBase): src = self._Tensor.full(index.shape, src, dtype=self.dtype, device=self.device)
    if index.ndim != self.ndim or src.ndim != self.ndim or any(i > s for i, s in zip(index.shape, src.shape)) or \
       any(i > s for k, (i, s) in enumerate(zip(index.shape, self.shape)) if k != d):
      raise ShapeError(f"scatter: index {index.shape}, src {src.shape} and input {self.shape} do not fit along dim {d}")
    src = src.shrink(tuple((0, s) for s in index.shape))
    hit = index._one_hot_along(self.shape[d], "scatter", dim=d)   # (*index.shape, n)
    pad = tuple((0, s - c) for s, c in zip(self.shape, index.shape[:d] + (self.shape[d],) + index.shape[d + 1:]))
    written = hit.any(d, keepdim=True).transpose(d, -1).squeeze(-1)._movement(Ops.PAD, pad)
    new = hit.where(src.unsqueeze(-1), 0).sum(d, keepdim=True, dtype=self.dtype if self.dtype.is_float else None)
    new = new.transpose(d, -1).squeeze(-1)._movement(Ops.PAD, pad).cast(self.dtype)
    return written.where(new, self)

  def take(self, index) -> Tensor:
    """torch.take: the elements of self read as a flat 1-D tensor at index (any shape; the result has its shape);
    negative indices count from the end. One GATHER, bounds-checked in the kernel."""
    if not isinstance(index, TensorBase) or index.dtype.is_float: raise DTypeError("take: index must be an integer Tensor")
    return self.reshape(-1)._advanced_index([(0, index)], op="take")

  def index_select(self, dim, index) -> Tensor:
    """torch.index_select: the slices of self along dim at the positions in index (1-D or 0-d; no negatives, as torch).
    One GATHER, bounds-checked in the kernel."""
    d = _dim("index_select", dim, self.ndim)
    if not isinstance(index, TensorBase) or index.dtype.is_float: raise DTypeError("index_select: index must be an integer Tensor")
    if index.ndim > 1: raise ValueError(f"index_select: index must be 1-D or 0-d, got shape {index.shape}")
    return self._advanced_index([(d, index.reshape(-1))], op="index_select", negative=False)

