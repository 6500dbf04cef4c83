"""The attention template's front end: scaled_dot_product_attention as one ATTENTION node (flash attention,
a kernel of its own: no L x S scores in memory) and its gradient rule, two more ATTENTION nodes (dQ; dK and
dV packed) that recompute the probabilities block by block. Node layouts: ops/attention.py.

`flash_attention` returns None when the call does not fit the template (other dtypes, head dims over 256,
batch dims that differ between q, k and v, an additive mask that needs a gradient, dropout_p >= 1,
FLASH_ATTENTION=0); scaled_dot_product_attention then composes the generic path."""
from __future__ import annotations
from dataclasses import replace
from typing import TYPE_CHECKING, Optional
from lazygrad.dtype import dtypes
from lazygrad.helpers import getenv, prod
from lazygrad.ops import Node, Ops, MOVEMENT
from lazygrad.ops.attention import AttentionArg, lse_cols
from lazygrad.ops.view import ShapeTracker
from lazygrad.tensor_base import _RNG

if TYPE_CHECKING: from lazygrad.tensor import Tensor

MAX_HEAD_DIM = 256   # q/k and v head dims the template takes (one tile of the head dim stays in registers)
DTYPES = ("float32", "float16", "bfloat16")


def _plain_view(t: Tensor) -> Tensor:
  """t itself when it reads its base (a buffer, or a value the scheduler stores) through one strided view without
  padding, which the Triton template indexes directly; else t.contiguous()."""
  n, mops = t.node, []
  while n.op in MOVEMENT and not n.realized: mops.append((n.op, n.arg)); n = n.srcs[0]
  st = n.st if n.realized else ShapeTracker.from_shape(n.shape)
  for op, arg in reversed(mops): st = st.apply(op.name, arg)
  return t if len(st.views) == 1 and st.views[0].mask is None else t.contiguous()


def _shrink_last(t: Tensor, lo: int, hi: int) -> Tensor:
  """t[..., lo:hi] as a view."""
  return t._movement(Ops.SHRINK, tuple((0, s) for s in t.shape[:-1]) + ((lo, hi),))


def fits_template(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor], dropout_p: float) -> bool:
  """Whether the template takes this call (shapes already checked by scaled_dot_product_attention)."""
  if not getenv("FLASH_ATTENTION", 1): return False
  if q.dtype.name not in DTYPES or k.dtype != q.dtype or v.dtype != q.dtype: return False
  if q.shape[:-2] != k.shape[:-2] or q.shape[:-2] != v.shape[:-2]: return False
  if max(q.shape[-1], v.shape[-1]) > MAX_HEAD_DIM or 0 in q.shape + k.shape + v.shape: return False
  if attn_mask is not None and (attn_mask.requires_grad or not (attn_mask.dtype.is_bool or attn_mask.dtype.is_float)): return False
  return 0 <= dropout_p < 1


def flash_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor], dropout_p: float, is_causal: bool,
                    scale: float) -> Optional[Tensor]:
  """softmax(q k^T * scale + mask) v as one ATTENTION node (see the module docstring), or None when the call does not
  fit the template. The mask is read through a broadcasting view (*B, L, S); dropout draws from the global random
  stream (Tensor.rand's numbers for a tensor of the scores' shape, so the composed path with the same seed drops
  the same elements)."""
  if not fits_template(q, k, v, attn_mask, dropout_p): return None
  batch, L, S, Ev = q.shape[:-2], q.shape[-2], k.shape[-2], v.shape[-1]
  srcs = [_plain_view(q).node, _plain_view(k).node, _plain_view(v).node]
  mask_kind = None
  if attn_mask is not None:
    mask_kind = "bool" if attn_mask.dtype.is_bool else "add"
    srcs.append(_plain_view(attn_mask.expand(*batch, L, S)).node)
  if dropout_p > 0:
    srcs.append(Node(Ops.RAND, (), (_RNG.seed, _RNG.counter), (*batch, L, S), dtypes.float32, q.device))
    _RNG.counter += prod((*batch, L, S))
  arg = AttentionArg("forward", bool(is_causal), float(scale), float(dropout_p), mask_kind)
  out = q._new(Ops.ATTENTION, tuple(srcs), arg, (*batch, L, Ev + lse_cols(q.dtype)), q.dtype)
  return _shrink_last(out, 0, Ev)


def attention_gradient(out: Tensor, g: Tensor, q: Tensor, k: Tensor, v: Tensor, *rest: Tensor):
  """The gradient rule of ATTENTION (autograd/gradient.py): (dq, dk, dv, None for the mask and the random source).
  D = rowsum(dO * O) is a small reduce of its own; dQ and the packed (dK, dV) are one template kernel each.
  The backward nodes have no gradient rule of their own: differentiating twice raises."""
  arg = out.node.arg
  if arg.kind != "forward":
    raise RuntimeError("backward: the attention template's backward is not differentiable (double backward through "
                       "scaled_dot_product_attention); set FLASH_ATTENTION=0 to use the composed path")
  E, Ev = q.shape[-1], v.shape[-1]
  o, do = _shrink_last(out, 0, Ev), _plain_view(_shrink_last(g, 0, Ev))
  d = (do.cast(dtypes.float32) * o.cast(dtypes.float32)).sum(-1)
  srcs = (q.node, k.node, v.node, out.node, do.node, d.node) + tuple(t.node for t in rest)
  dq = q._new(Ops.ATTENTION, srcs, replace(arg, kind="grad_q"), q.shape, q.dtype)
  dkv = q._new(Ops.ATTENTION, srcs, replace(arg, kind="grad_kv"), (*k.shape[:-1], E + Ev), q.dtype)
  return (dq, _shrink_last(dkv, 0, E), _shrink_last(dkv, E, E + Ev)) + (None,) * len(rest)
