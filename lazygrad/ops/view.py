"""Views: how an index space maps onto a flat buffer, so movement ops never copy.

A View is (shape, strides, offset, mask): element idx lives at
offset + sum(idx[d] * strides[d]) and is valid (else reads as 0) where
mask[d][0] <= idx[d] < mask[d][1] for every d. A ShapeTracker is a short stack of
Views for the reshapes that one View cannot express: the flat index of the outer
view, unravelled in C order over the inner view's shape, indexes the inner view.
"""
from __future__ import annotations
from dataclasses import dataclass
import math
from typing import Optional

Shape = tuple[int, ...]


def strides_for(shape: Shape) -> tuple[int, ...]:
  """C-contiguous strides of shape, 0 for size-1 dims."""
  out, acc = [], 1
  for s in reversed(shape):
    out.append(acc if s != 1 else 0)
    acc *= s
  return tuple(reversed(out))


@dataclass(frozen=True)
class View:
  """One strided view of a flat buffer: idx is at offset + sum(idx[d] * strides[d]) and reads 0 outside mask.
  The movement methods return a new View (canonical: size-1 dims have stride 0, a full mask is None)."""
  shape: Shape
  strides: tuple[int, ...]
  offset: int = 0
  mask: Optional[tuple[tuple[int, int], ...]] = None

  @staticmethod
  def contiguous(shape: Shape, offset: int = 0) -> View:
    """The C-contiguous View of shape, starting at offset."""
    return View(tuple(shape), strides_for(shape), offset, None)

  @property
  def is_contiguous(self) -> bool:
    """Offset 0, no mask and C-contiguous strides: the buffer read in order."""
    return self.offset == 0 and self.mask is None and self.strides == strides_for(self.shape)

  def _canon(self, shape, strides, offset, mask) -> View:
    # size-1 dims never need a stride; a mask covering everything is no mask
    strides = tuple(0 if s == 1 else st for s, st in zip(shape, strides))
    if mask is not None:
      if any(lo >= hi for lo, hi in mask): mask = tuple((0, 0) for _ in shape)
      elif all(lo == 0 and hi == s for (lo, hi), s in zip(mask, shape)): mask = None
    return View(tuple(shape), strides, offset, mask)

  def permute(self, order) -> View:
    """Dims reordered by order (torch.permute)."""
    mask = tuple(self.mask[i] for i in order) if self.mask else None
    return self._canon([self.shape[i] for i in order], [self.strides[i] for i in order], self.offset, mask)

  def expand(self, shape: Shape) -> View:
    """Size-1 dims broadcast to shape with stride 0 (torch.expand)."""
    strides = [st if s == n else 0 for s, n, st in zip(self.shape, shape, self.strides)]
    mask = None
    if self.mask:
      mask = tuple(m if s == n else ((0, n) if m[1] > m[0] else (0, 0)) for m, s, n in zip(self.mask, self.shape, shape))
    return self._canon(shape, strides, self.offset, mask)

  def shrink(self, arg) -> View:
    """The sub-box arg = ((lo, hi), ...) per dim (a slice with step 1)."""
    offset = self.offset + sum(lo * st for (lo, _), st in zip(arg, self.strides))
    mask = None
    if self.mask:
      mask = tuple((max(0, mlo - lo), max(0, min(mhi, hi) - lo)) for (mlo, mhi), (lo, hi) in zip(self.mask, arg))
    return self._canon([hi - lo for lo, hi in arg], self.strides, offset, mask)

  def pad(self, arg) -> View:
    """arg = ((before, after), ...) per dim added around as masked elements, which read 0."""
    if all(b == 0 and a == 0 for b, a in arg): return self
    offset = self.offset - sum(b * st for (b, _), st in zip(arg, self.strides))
    base = self.mask or tuple((0, s) for s in self.shape)
    mask = tuple((lo + b, hi + b) for (lo, hi), (b, _) in zip(base, arg))
    shape = [s + b + a for s, (b, a) in zip(self.shape, arg)]
    return self._canon(shape, self.strides, offset, mask)

  def flip(self, axes) -> View:
    """The given axes reversed (negative strides), as torch.flip."""
    offset, strides, mask = self.offset, list(self.strides), list(self.mask) if self.mask else None
    for ax in axes:
      n = self.shape[ax]
      if n == 0: continue
      offset += (n - 1) * strides[ax]
      strides[ax] = -strides[ax]
      if mask: mask[ax] = (n - mask[ax][1], n - mask[ax][0])
    return self._canon(self.shape, strides, offset, tuple(mask) if mask else None)

  def reshape(self, new_shape: Shape) -> Optional[View]:
    """The same elements in a new shape as one View, or None when one View cannot say it."""
    new_shape = tuple(new_shape)
    if self.shape == new_shape: return self
    if 0 in self.shape or 0 in new_shape: return View.contiguous(new_shape)
    if self.mask is None and self.strides == strides_for(self.shape):
      return View(new_shape, strides_for(new_shape), self.offset, None)
    # drop size-1 dims, then split/merge the rest where strides allow (numpy's no-copy reshape)
    old = [(s, st, (self.mask[i] if self.mask else (0, s))) for i, (s, st) in enumerate(zip(self.shape, self.strides)) if s != 1]
    if self.mask and any(m != (0, 1) for s, m in zip(self.shape, self.mask) if s == 1): return None
    new = [s for s in new_shape if s != 1]
    out_strides, out_mask, i, j = [], [], 0, 0
    while i < len(old) and j < len(new):
      # grow the groups until the products match
      oi, nj = i + 1, j + 1
      po, pn = old[i][0], new[j]
      while po != pn:
        if po < pn: po *= old[oi][0]; oi += 1
        else: pn *= new[nj]; nj += 1
      group_old, group_new = old[i:oi], new[j:nj]
      # inside a group, the old dims must be mergeable: stride[k] == stride[k+1] * size[k+1]
      for a, b in zip(group_old, group_old[1:]):
        if a[1] != b[1] * b[0]: return None
      masked = [g for g in group_old if g[2] != (0, g[0])]
      if masked:
        # a masked dim may only pass through unchanged
        if len(group_old) != 1 or len(group_new) != 1: return None
        out_mask.append(group_old[0][2])
      else:
        out_mask.extend((0, s) for s in group_new)
      st = group_old[-1][1]
      for s in reversed(group_new):
        out_strides.append(st); st *= s
      out_strides[len(out_strides) - len(group_new):] = reversed(out_strides[len(out_strides) - len(group_new):])
      i, j = oi, nj
    # re-insert the size-1 dims
    strides, mask, k = [], [], 0
    for s in new_shape:
      if s == 1: strides.append(0); mask.append((0, 1))
      else: strides.append(out_strides[k]); mask.append(out_mask[k]); k += 1
    return self._canon(new_shape, strides, self.offset, tuple(mask) if self.mask else None)


@dataclass(frozen=True)
class ShapeTracker:
  """A stack of Views, inner first, for reshapes one View cannot express: the outermost (last) view's flat index,
  unravelled over the inner view's shape, indexes the inner view."""
  views: tuple[View, ...]

  @staticmethod
  def from_shape(shape: Shape) -> ShapeTracker:
    """The contiguous ShapeTracker of shape."""
    return ShapeTracker((View.contiguous(tuple(shape)),))
  @property
  def shape(self) -> Shape:
    """The shape of the outermost view."""
    return self.views[-1].shape
  @property
  def view(self) -> View:
    """The outermost view."""
    return self.views[-1]
  @property
  def is_contiguous(self) -> bool:
    """One contiguous view: a plain in-order read of the buffer."""
    return len(self.views) == 1 and self.views[0].is_contiguous
  @property
  def has_mask(self) -> bool:
    """Whether any view has a mask (padding)."""
    return any(v.mask is not None for v in self.views)

  def _replace(self, v: View) -> ShapeTracker: return ShapeTracker(self.views[:-1] + (v,)).simplify()

  def simplify(self) -> ShapeTracker:
    """The same mapping with the outer views merged into the inner ones while merge_views can (self if none merge)."""
    views = self.views
    while len(views) >= 2:
      merged = merge_views(views[-2], views[-1])
      if merged is None: break
      views = views[:-2] + (merged,)
    return ShapeTracker(views) if views is not self.views else self
  def permute(self, order) -> ShapeTracker:
    """View.permute on the outermost view, then simplify."""
    return self._replace(self.view.permute(order))
  def expand(self, shape) -> ShapeTracker:
    """View.expand on the outermost view, then simplify."""
    return self._replace(self.view.expand(tuple(shape)))
  def shrink(self, arg) -> ShapeTracker:
    """View.shrink on the outermost view, then simplify."""
    return self._replace(self.view.shrink(arg))
  def pad(self, arg) -> ShapeTracker:
    """View.pad on the outermost view, then simplify."""
    return self._replace(self.view.pad(arg))
  def flip(self, axes) -> ShapeTracker:
    """View.flip on the outermost view, then simplify."""
    return self._replace(self.view.flip(axes))

  def reshape(self, shape) -> ShapeTracker:
    """The same elements in shape: in the outermost view when View.reshape can say it, else a contiguous view
    of shape stacked on top; then simplify."""
    v = self.view.reshape(tuple(shape))
    if v is not None: return self._replace(v)
    return ShapeTracker(self.views + (View.contiguous(tuple(shape)),)).simplify()

  def apply(self, op_name: str, arg) -> ShapeTracker:
    """A movement op by name ('RESHAPE', 'PERMUTE', 'EXPAND', 'PAD', 'SHRINK', 'FLIP') with its arg."""
    return getattr(self, op_name.lower())(arg)

  def size(self) -> int:
    """The number of elements of shape."""
    return math.prod(self.shape)


def _ceildiv(a: int, b: int) -> int: return -((-a) // b)


def _solve_range(base: int, coef: int, lo: int, hi: int) -> tuple[int, int]:
  """The i with lo <= base + coef*i < hi, as a half-open range (coef != 0)."""
  if coef > 0: return _ceildiv(lo - base, coef), _ceildiv(hi - base, coef)
  return (base - hi) // -coef + 1, (base - lo) // -coef + 1


def _digits(st: int, cont: list[int], kdims: list[int]) -> dict[int, int] | None:
  """st as a sum of coef * cont[k] over the inner dims kdims (outermost first), sign kept on every
  digit (a flipped dim reads backwards in each inner dim it touches); None if no split."""
  sign, rest, out = (1 if st > 0 else -1), abs(st), {}
  for k in kdims:
    if rest >= cont[k]: out[k], rest = sign * (rest // cont[k]), rest % cont[k]
  return out if rest == 0 else None


def affine_split(inner: View, outer: View, box=None):
  """How outer's index reaches inner's dims when unravelling outer's flat address over inner.shape
  has no carries on the box (outer's valid region): (cidx, coef, ranges) with inner index
  k = cidx[k] + sum_d coef[d][k] * i_d, in [ranges[k][0], ranges[k][1]] on the box; else None.

  Each varying outer dim's stride is split over the inner dims in mixed radix: one dim when it is
  a small multiple of one contiguous inner stride, several when not (a conv window's kernel dim
  moves both the repeat dim and the spatial dim of an expanded input). Masks are not looked at."""
  if 0 in inner.shape or 0 in outer.shape: return None
  box = list(box or outer.mask or tuple((0, s) for s in outer.shape))
  if any(lo >= hi for lo, hi in box): return None
  cont, acc = [0] * len(inner.shape), 1
  for k in reversed(range(len(inner.shape))): cont[k], acc = acc, acc * inner.shape[k]
  kdims = [k for k, s in enumerate(inner.shape) if s != 1]
  if not kdims: return None
  varying = [d for d, (st, (lo, hi)) in enumerate(zip(outer.strides, box)) if st != 0 and hi - lo > 1]
  const = outer.offset + sum(st * box[d][0] for d, st in enumerate(outer.strides) if d not in varying)
  coef: dict[int, dict[int, int]] = {}
  for d in varying:
    coef[d] = _digits(outer.strides[d], cont, kdims)
    if coef[d] is None: return None
  # split the constant over the inner dims (mixed radix); the outermost keeps the rest
  cidx, rest = {}, const
  for k in reversed(kdims):
    cidx[k] = rest // cont[k] if k == kdims[0] else (rest // cont[k]) % inner.shape[k]
    rest -= cidx[k] * cont[k]
  if rest != 0: return None
  ranges = {}
  for k in kdims:   # no carries anywhere
    terms = [(coef[d][k], box[d]) for d in varying if k in coef[d]]
    mn = cidx[k] + sum(c * (lo if c > 0 else hi - 1) for c, (lo, hi) in terms)
    mx = cidx[k] + sum(c * (hi - 1 if c > 0 else lo) for c, (lo, hi) in terms)
    if mn < 0 or mx >= inner.shape[k]: return None
    ranges[k] = (mn, mx)
  return cidx, coef, ranges


def merge_views(inner: View, outer: View) -> Optional[View]:
  """One View equal to `outer` indexing the flat index of `inner`, or None.

  affine_split says how outer's dims reach inner's without carries; inner's mask must then
  hold on the whole box or constrain a single outer dim (which shrinks the box). This turns
  pad->reshape->shrink (stepped slices, windows) and expand->reshape->shrink (conv windows
  without padding, overlapping strides) back into one View."""
  if inner.mask and any(lo >= hi for lo, hi in inner.mask): return None
  split = affine_split(inner, outer)
  if split is None: return None
  cidx, coef, ranges = split
  box = list(outer.mask or tuple((0, s) for s in outer.shape))
  strides = [0] * len(outer.shape)
  for d, cs in coef.items(): strides[d] = sum(c * inner.strides[k] for k, c in cs.items())
  offset = inner.offset + sum(cidx[k] * inner.strides[k] for k in cidx)
  for k, (mn, mx) in ranges.items():
    if not inner.mask or inner.mask[k] == (0, inner.shape[k]): continue
    lo_k, hi_k = inner.mask[k]
    if lo_k <= mn and mx < hi_k: continue
    group = [d for d, cs in coef.items() if k in cs]
    if not group: box = [(0, 0)] * len(box); break
    if len(group) != 1: return None
    d = group[0]
    ilo, ihi = _solve_range(cidx[k], coef[d][k], lo_k, hi_k)
    box[d] = (max(box[d][0], ilo), min(box[d][1], ihi))
  mask = tuple(box) if (outer.mask is not None or any(b != (0, s) for b, s in zip(box, outer.shape))) else None
  return View(outer.shape, tuple(strides), offset, mask)._canon(outer.shape, strides, offset, mask)
