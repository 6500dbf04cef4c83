"""Views and in-place writes: how `x[1:].add_(100)`, `w[0] = 0` and `y.T.copy_(z)` reach the tensor they view.

A tensor made by movement ops (reshape/view, permute/transpose, expand, basic indexing, narrow,
split/chunk/unbind, squeeze/unsqueeze/flatten) is a *view*: it remembers its base (a tensor that is
not a view) and the chain of movement ops from the base (`_base`, `_chain`); the base holds weak
references to its live views (`_views`). Values are immutable graph nodes, so a write into a view
gives the base a new node, the old base with the view's region replaced:

    new_base = where(region, inverse(value), old_base)

`inverse` undoes the chain op by op (SHRINK by PAD, PAD by SHRINK, PERMUTE by the inverse permutation,
RESHAPE back, FLIP again) and `region` is inverse(ones(bool)): False outside the view. The base's node
becomes ASSIGN(old, new_base), which the scheduler writes in place when nothing else still reads the old
contents (scheduler/assign.py); a write over a pending, unrealized ASSIGN replaces that ASSIGN's value,
so several writes before a realize are one kernel. When autograd must see the write (grad mode on and
the base or the value requires grad), the base's node is the `where` itself: the gradient reaches the
old base outside the region and the value inside it, as torch. Afterwards every live view of the base
is rebuilt from the new node, so all of them see the write (torch's version semantics).

Which results are views follows torch, with one difference: reshape/view are always views here (torch's
reshape copies when the strides do not allow a view, and its view raises). flip, pad, repeat/tile and
cat/stack copy, as torch; advanced indexing (integer tensors, bool masks) copies, as torch."""
from __future__ import annotations
from typing import TYPE_CHECKING
import weakref
import numpy as np
from lazygrad.dtype import DType, dtypes
from lazygrad.ops import Node, Ops, toposort
from lazygrad.tensor_base import TensorBase, _GradMode, IndexError_, ShapeError, DTypeError, broadcast_shape, movement_shape

if TYPE_CHECKING: from lazygrad.tensor import Tensor


ShapeMismatch = ShapeError   # a value that does not fit the region written (the older name)


def _can_cast(src: DType, dst: DType) -> bool:
  """torch's rule for in-place results: no float into an int tensor, nothing but bool into a bool tensor."""
  if dst.is_bool: return src.is_bool
  if dst.is_int: return not src.is_float
  return True


def _replay(node: Node, chain, requires_grad: bool) -> Node:
  """The view `chain` applied to `node` (raw nodes: a rebuilt view is not registered again)."""
  for op, arg in chain:
    node = Node(op, (node,), arg, movement_shape(op, arg, node.shape), node.dtype, node.device, requires_grad and node.requires_grad)
  return node


def _substitute(root: Node, old: Node, new: Node, limit: int = 4096) -> Node:
  """root's graph with the unrealized node `old` replaced by `new` (the nodes on the way rebuilt), or None when the
  graph has more than `limit` nodes (then the caller keeps both)."""
  order = toposort([root])
  if len(order) > limit: return None
  memo: dict[int, Node] = {id(old): new}
  for n in order:
    if n.realized or id(n) in memo: continue
    srcs = tuple(memo.get(id(s), s) for s in n.srcs)
    if any(a is not b for a, b in zip(srcs, n.srcs)):
      memo[id(n)] = Node(n.op, srcs, n.arg, n.shape, n.dtype, n.device, n.requires_grad)
  return memo.get(id(root), root)


def _shapes_before(shape, chain) -> list[tuple[int, ...]]:
  """The shape before each op of chain, starting from the base's shape."""
  out = []
  for op, arg in chain:
    out.append(shape)
    shape = movement_shape(op, arg, shape)
  return out


class InplaceMixin(TensorBase):
  """Tensor's views and in-place writes: assign, the torch-named `*_` methods, `__setitem__`, `+=`."""
  __slots__ = ()

  # ---- view bookkeeping (called by Tensor._movement)
  def _track_view(self, out: Tensor, op: Ops, arg) -> None:
    """Record that `out` is self moved by (op, arg): a view of self's base."""
    base = self._base if self._base is not None else self
    out._base, out._chain = base, self._chain + ((op, arg),)
    views = base._views
    if views is None: base._views = [weakref.ref(out)]
    else:
      views.append(weakref.ref(out))
      # dead references go at each power of two: amortized O(1) per view, bounded by twice the live ones
      if len(views) >= 64 and len(views) & (len(views) - 1) == 0: base._views = [r for r in views if r() is not None]

  def _copy(self) -> Tensor:
    """A new tensor with the same value that is not a view (what torch's copying ops return): writes to it stay in it."""
    return self._Tensor._from_node(self.node)

  def _refresh_views(self) -> None:
    """Rebuild every live view of this base from its (new) node."""
    if not self._views: return
    live = []
    for ref in self._views:
      v = ref()
      if v is None or v._base is not self: continue   # dead, or made a leaf of its own (requires_grad_)
      live.append(ref)
      v.node = _replay(self.node, v._chain, v.node.requires_grad or _GradMode.enabled)
    self._views = live

  def _inverse(self, chain, shapes) -> Tensor:
    """self (shaped as the end of chain) moved back to the base's shape; positions outside the view read 0."""
    t = self
    for (op, arg), src in zip(reversed(chain), reversed(shapes)):
      if op is Ops.RESHAPE: op, arg = Ops.RESHAPE, src
      elif op is Ops.PERMUTE: arg = tuple(int(i) for i in np.argsort(arg))
      elif op is Ops.SHRINK: op, arg = Ops.PAD, tuple((lo, s - hi) for (lo, hi), s in zip(arg, src))
      elif op is Ops.PAD: op, arg = Ops.SHRINK, tuple((b, b + s) for (b, _), s in zip(arg, src))
      elif op is Ops.EXPAND: op, arg = Ops.RESHAPE, src   # only size-1 dims staying 1 or becoming 0 get here
      t = t._new(op, (t.node,), arg, movement_shape(op, arg, t.shape), t.dtype)
    return t

  # ---- the one write path
  def _write(self, value: Tensor, op: str, torch_rules: bool = True) -> Tensor:
    """Make `value` (self's shape, cast to self's dtype here) the contents of self, and so of self's region of
    its base; torch_rules=False (assign) skips torch's leaf check and never records the write for autograd."""
    Tensor = self._Tensor
    base, chain = (self._base, self._chain) if self._base is not None else (self, ())
    grad_on = _GradMode.enabled
    if torch_rules and grad_on and base.requires_grad and base._is_leaf_param:
      raise RuntimeError(f"{op}: a {'view of a ' if chain else ''}leaf Variable that requires grad is being used in an in-place operation.")
    shapes = _shapes_before(base.shape, chain)
    for (mop, arg), src in zip(chain, shapes):
      if mop is Ops.EXPAND and any(s == 1 and n > 1 for s, n in zip(src, arg)):
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to tensor refers to a single memory "
                           f"location (an expanded view of shape {self.shape} of a tensor of shape {base.shape}). Please clone() the tensor "
                           "before performing the operation.")
    value = value.cast(self.dtype)
    if self.numel() == 0: return self
    differentiable = torch_rules and grad_on and (base.requires_grad or value.requires_grad)
    old = base.node
    # a write over a pending (unrealized) write replaces its value: one kernel for both
    pending = old.op is Ops.ASSIGN and not old.realized and not differentiable
    prev = Tensor._from_node(old.srcs[1] if pending else old)
    if chain:
      region = Tensor.full(self.shape, True, dtype=dtypes.bool, device=self.device)._inverse(chain, shapes)
      new = region.where(value._inverse(chain, shapes), prev)
    else: new = value
    if differentiable: base.node = new.node
    else:
      keep_grad = old.requires_grad and base.is_leaf   # a parameter written under no_grad stays a parameter
      value_node, target = new.node, old
      if pending:
        # the new value may read the pending write (x[i] += v reads x[i]): read that write's value instead, so the
        # pending write is not needed and one kernel writes both
        sub = _substitute(value_node, old, old.srcs[1])
        if sub is not None: value_node, target = sub, old.srcs[0]   # else too big to rewrite: keep both writes
      base.node = Node(Ops.ASSIGN, (target, value_node), None, base.shape, base.dtype, base.device, keep_grad)
    base._refresh_views()
    return self

  def _fit(self, value, shape, op: str) -> Tensor:
    """value (a number, nested list, array or Tensor) as a Tensor of `shape` and self's dtype, broadcast as torch's copy_."""
    Tensor = self._Tensor
    if not isinstance(value, TensorBase):
      if isinstance(value, (list, tuple, np.ndarray)): value = Tensor(value, dtype=self.dtype, device=self.device)
      elif isinstance(value, (int, float, bool, np.number, np.bool_)): value = Tensor.full((), value, dtype=self.dtype, device=self.device)
      else: raise TypeError(f"{op}: value must be a number or a Tensor, got {type(value).__name__} (tensor of shape {self.shape})")
    if value.device != self.device: raise ValueError(f"{op}: value on {value.device}, tensor on {self.device}")
    while value.ndim > len(shape) and value.shape[0] == 1: value = value.reshape(value.shape[1:])   # leading 1s drop, as torch
    try: fits = broadcast_shape(op, shape, value.shape) == tuple(shape)
    except ValueError: fits = False
    if not fits: raise ShapeMismatch(f"{op}: value of shape {value.shape} does not match (cannot be broadcast to) shape {tuple(shape)}")
    return value.cast(self.dtype)._broadcast_to(tuple(shape))

  def _inplace(self, op: str, result: Tensor) -> Tensor:
    """torch's x.op_(...): result (computed from self) becomes self's value, with torch's shape and dtype checks."""
    if result.shape != self.shape:
      raise ShapeMismatch(f"{op}: output with shape {self.shape} doesn't match the broadcast shape {result.shape}")
    if not _can_cast(result.dtype, self.dtype):
      raise RuntimeError(f"{op}: result type {result.dtype} can't be cast to the desired output type {self.dtype}")
    return self._write(result, op)

  def clone(self, memory_format=None) -> Tensor:
    """torch.clone: the same values in a tensor of its own (writes to either stay there); the gradient flows back, as torch.
    Free until written: it shares the immutable node (memory_format is accepted and ignored)."""
    return self._copy()

  # ---- in-place methods
  def assign(self, value) -> Tensor:
    """Give this tensor a new value in place (what optimizers do); value is broadcast and cast to this tensor's shape
    and dtype, and a view writes through to its base. Not recorded by autograd and allowed on leaves that require grad
    (torch's copy_ is neither); other tensors computed from the old value keep it. Not in torch (copy_ is close)."""
    return self._write(self._fit(value, self.shape, "assign"), "assign", torch_rules=False)
  def copy_(self, src) -> Tensor:
    """torch.Tensor.copy_: src broadcast and cast into self (and its base, for a view); the gradient reaches src, as torch."""
    return self._write(self._fit(src, self.shape, "copy_"), "copy_")
  def fill_(self, value) -> Tensor:
    """torch.Tensor.fill_: value (a number or a 0-d tensor) everywhere in self."""
    if isinstance(value, TensorBase) and value.ndim:
      raise ShapeMismatch(f"fill_: only supports a 0-dimension value tensor, got shape {value.shape}")
    return self._write(self._fit(value, self.shape, "fill_"), "fill_")
  def zero_(self) -> Tensor:
    """torch.Tensor.zero_: zeros everywhere in self."""
    return self.fill_(0)
  def add_(self, o, alpha=1) -> Tensor:
    """torch.Tensor.add_: self + alpha * o in place (recorded by autograd when self or o requires grad, as torch)."""
    return self._inplace("add_", self.add(o, alpha=alpha))
  def sub_(self, o, alpha=1) -> Tensor:
    """torch.Tensor.sub_: self - alpha * o in place."""
    return self._inplace("sub_", self.sub(o, alpha=alpha))
  def mul_(self, o) -> Tensor:
    """torch.Tensor.mul_: self * o in place."""
    return self._inplace("mul_", self * o)
  def div_(self, o, rounding_mode=None) -> Tensor:
    """torch.Tensor.div_: self / o in place (an int tensor needs rounding_mode, as torch)."""
    return self._inplace("div_", self.div(o, rounding_mode=rounding_mode))
  def clamp_(self, min=None, max=None) -> Tensor:
    """torch.Tensor.clamp_ (alias clip_): clamp in place."""
    return self._inplace("clamp_", self.clamp(min, max))
  clip_ = clamp_
  def masked_fill_(self, mask, value) -> Tensor:
    """torch.Tensor.masked_fill_: value where the bool mask (broadcast to self) is True, in place."""
    return self._inplace("masked_fill_", self.masked_fill(mask, value))
  def __iadd__(self, o): return self.add_(o)
  def __isub__(self, o): return self.sub_(o)
  def __imul__(self, o): return self.mul_(o)
  def __itruediv__(self, o): return self.div_(o)

  # ---- indexed writes
  def __setitem__(self, idx, value) -> None:
    """torch's x[idx] = value: ints, slices (with steps), None, Ellipsis, bool masks and integer index tensors (torch's
    index_put_ with accumulate=False: for repeated indices one of the values lands, here the last); value is a number or
    a tensor broadcast to the indexed region and cast to self's dtype. A lazy write into self's base (see the module doc)."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    mask = parts[0] if len(parts) == 1 and isinstance(parts[0], TensorBase) and parts[0].dtype.is_bool else None
    if mask is not None and mask.shape == self.shape[:mask.ndim]:
      # x[mask] = value with value broadcast over the unmasked dims: one where, no host sync
      rest = self.shape[mask.ndim:]
      try: v = self._fit(value, rest, "setitem")
      except ShapeMismatch: v = None
      if v is not None:
        m = mask.reshape(mask.shape + (1,) * len(rest))
        self._write(m.where(v, self), "setitem")
        return
    xv, tensor_dims = self._basic_view(parts)
    if not tensor_dims and isinstance(value, TensorBase) and value._base is not None and value._base is xv._base and \
       value._chain == xv._chain:
      return   # x[i] += v: the view was written in place by __iadd__ already; writing it back would change nothing
    if not tensor_dims: xv._write(xv._fit(value, xv.shape, "setitem"), "setitem")
    else: xv._index_put(tensor_dims, value, False, "setitem")

  def index_put_(self, indices, values, accumulate: bool = False) -> Tensor:
    """torch.Tensor.index_put_: self[indices] = values (accumulate=False; one value lands for a repeated index) or
    self[indices] += values counting every repeat (accumulate=True); indices is a tuple of integer or bool tensors."""
    if not isinstance(indices, (tuple, list)): raise TypeError("index_put_: indices must be a tuple of Tensors")
    if not accumulate:
      self[tuple(indices)] = values
      return self
    xv, tensor_dims = self._basic_view(tuple(indices))
    if not tensor_dims: xv.add_(values)
    else: xv._index_put(tensor_dims, values, True, "index_put_")
    return self

  def _basic_view(self, parts: tuple):
    """The view self[parts] with every index tensor replaced by a full slice, and [(dim in that view, index tensor)].
    Bool masks become the integer tensors of their nonzero positions (a host sync, as in __getitem__)."""
    Tensor = self._Tensor
    norm, host = [], {}   # host: id(index tensor) -> (min, max) of indices known on the host, checked against their dim
    for i in parts:
      if isinstance(i, (list, np.ndarray)):
        a = np.asarray(i)
        i = Tensor(a, device=self.device)
        if a.dtype.kind in "iu" and a.size: host[id(i)] = (int(a.min()), int(a.max()))
      if isinstance(i, TensorBase) and i.dtype.is_bool:
        norm.append(("mask", i)); norm.extend(Tensor(a, device=self.device) for a in np.nonzero(i.numpy()))
        continue
      norm.append(i)
    real = [i for i in norm if not isinstance(i, tuple)]
    n_real = sum(1 for i in real if i is not None and i is not Ellipsis)
    if n_real > self.ndim: raise IndexError_(f"setitem: too many indices ({n_real}) for a tensor of shape {self.shape}")
    if sum(1 for i in real if i is Ellipsis) > 1: raise IndexError_("setitem: an index can only have a single ellipsis")
    basic, tensor_dims, d, src = [], [], 0, 0   # d: dim of the view, src: dim of self
    for i in norm:
      if isinstance(i, tuple):   # a mask's shape must match the dims it covers
        covered = self.shape[src:src + i[1].ndim]
        if tuple(covered) != i[1].shape:
          raise IndexError_(f"setitem: the shape of the mask {i[1].shape} does not match the indexed dims {tuple(covered)} of shape {self.shape}")
        continue
      if i is Ellipsis:
        fill = self.ndim - n_real
        basic.extend([slice(None)] * fill); d += fill; src += fill
      elif i is None: basic.append(None); d += 1
      elif isinstance(i, TensorBase):
        if i.dtype.is_float: raise DTypeError(f"setitem: tensors used as indices must be integer or bool, got {i.dtype}")
        lo, hi = host.get(id(i), (0, 0))
        if self.shape[src] and not -self.shape[src] <= lo <= hi < self.shape[src]:
          raise IndexError_(f"setitem: index {hi if hi >= self.shape[src] else lo} is out of bounds for dim {src} with size "
                            f"{self.shape[src]} (shape {self.shape})")
        basic.append(slice(None)); tensor_dims.append((d, i)); d += 1; src += 1
      elif isinstance(i, (int, np.integer, slice)) and not isinstance(i, bool):
        basic.append(i); src += 1
        if isinstance(i, slice): d += 1
      else: raise TypeError(f"setitem: unsupported index type {type(i).__name__}")
    xv = self[tuple(basic)]
    return xv, tensor_dims

  def _index_put(self, tensor_dims, value, accumulate: bool, op: str) -> None:
    """self[..., idx, ...] = value for integer index tensors at tensor_dims, as a one-hot compare over the indexed dims
    (no scatter primitive): position j takes the value of the last index naming it, or keeps its value if none does."""
    Tensor = self._Tensor
    dims = [d for d, _ in tensor_dims]
    bshape = broadcast_shape(op, *[t.shape for _, t in tensor_dims])
    rest = [d for d in range(self.ndim) if d not in dims]
    nb, nr, k = len(bshape), len(rest), len(dims)
    rest_shape = tuple(self.shape[d] for d in rest)
    # the indexed region has getitem's shape: the index dims in front, or in place when they are adjacent and not first
    inside = dims == list(range(dims[0], dims[0] + k)) and dims[0] > 0
    region = rest_shape[:dims[0]] + bshape + rest_shape[dims[0]:] if inside else bshape + rest_shape
    v = self._fit(value, region, op)
    if inside: v = v.permute(list(range(dims[0], dims[0] + nb)) + list(range(dims[0])) + list(range(dims[0] + nb, nb + nr)))
    if not all(bshape) or not all(rest_shape): return
    if nb == 0:   # 0-d indices: one index, given a dim of its own so that B is never empty
      bshape, nb, v = (1,), 1, v.reshape((1,) + v.shape)
      tensor_dims = [(d, t.reshape(1)) for d, t in tensor_dims]
    v = v.reshape(bshape + rest_shape + (1,) * k)                       # (B.., rest.., 1..)
    hit = None
    for j, (d, t) in enumerate(tensor_dims):
      n = self.shape[d]
      t = t._bounds(-n, n, op, "index", d).cast(dtypes.int64)   # checked in the kernel (IndexError at realize)
      t = (t < 0).where(t + n, t)._broadcast_to(bshape)
      ar = Tensor.arange(n, device=self.device).reshape((1,) * (nb + nr + j) + (n,) + (1,) * (k - j - 1))
      oh = t.reshape(bshape + (1,) * (nr + k)).eq(ar)
      hit = oh if hit is None else hit & oh                            # (B.., 1.., n..)
    b_axes = tuple(range(nb))
    if not accumulate:
      # duplicates: keep only the last index (largest flat position in B) that names each position
      rank = Tensor.arange(1, int(np.prod(bshape)) + 1, device=self.device).reshape(bshape + (1,) * (nr + k))
      last = hit.where(rank, 0).amax(b_axes, keepdim=True)
      hit = hit & rank.eq(last)
    acc = self.dtype if self.dtype.is_float else dtypes.int64
    written = hit.where(v.cast(acc), 0).sum(b_axes, dtype=acc)        # (rest.., n..)
    order = rest + dims
    xp = self.permute(order)
    if accumulate: new = (xp.cast(acc) + written).cast(self.dtype)
    else: new = hit.any(b_axes).reshape((1,) * nr + xp.shape[nr:]).where(written.cast(self.dtype), xp)
    self._write(new.permute([order.index(i) for i in range(self.ndim)]), op)
