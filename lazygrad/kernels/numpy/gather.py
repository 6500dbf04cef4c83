"""GATHER and SCATTER_ADD on the numpy device (ops/gather.py has their semantics).

A gather is one `np.take` of the flat source buffer at base address + clipped index * stride (broadcastable arrays,
so a dim the source is read broadcast along costs nothing until the take). A scatter-add is one `np.bincount` of the
values at their flat output addresses (float sums, much faster than `np.add.at`; the sums are in float64, rounded once
to the dtype), `np.add.at` for integers. Indices are clipped, so an out-of-range one never reads or writes outside the
buffer: the bounds check (Ops.CHECK) in the kernel that computed it reports it."""
from __future__ import annotations
import math
import numpy as np
from lazygrad.kernels.ir import Expr, leaf_st
from lazygrad.kernels.numpy.lib import addresses, load, check as lib_check
from lazygrad.ops import Ops
from lazygrad.ops.gather import scatter_strides


def gather(buf: np.ndarray, st, stride: int, n: int, idx: np.ndarray) -> np.ndarray:
  """GATHER: buf read at st's addresses (the gathered dim pinned) plus clip(idx, 0, n - 1) * stride; 0 where st is
  masked (padding)."""
  addr, valid = addresses(st)
  if buf.size == 0 or n == 0: return np.zeros(np.broadcast_shapes(np.shape(addr), np.shape(idx), np.shape(valid)), buf.dtype)
  full = addr + np.clip(idx, 0, n - 1).astype(np.int64) * stride
  if valid is not True and not (np.ndim(valid) == 0 and bool(valid)):
    full = np.where(valid, full, 0)
    return np.where(valid, buf.take(full), np.zeros((), buf.dtype))
  return buf.take(full)


def run_scatter_add(body: Expr, out_shape, bufs, vars_=()) -> None:
  """SCATTER_ADD into bufs[0] (flat, contiguous out_shape): each value at its output address (idx along dim, the
  value's own position along the other dims, 0 along dims out_shape is 1); out-of-range indices add nothing."""
  dim, _ = body.arg
  index, value = body.srcs
  check = index if index.op is Ops.CHECK else None   # the index's bounds check, evaluated here (fusion._template_source)
  if check is not None: index = check.srcs[0]
  out, ibuf, vbuf = bufs[0], bufs[index.arg[0]], bufs[value.arg[0]]
  ist, vst = leaf_st(index), leaf_st(value)
  shape = tuple(ist.shape)
  if 0 in shape or out.size == 0:
    out[...] = 0
    return
  idx = np.broadcast_to(load(ibuf, ist), shape).astype(np.int64)
  if check is not None:
    lo, hi, site = check.arg
    lib_check(idx, lo, hi, bufs[-1], vars_[-1] + site)
  vals = np.broadcast_to(load(vbuf, vst), shape)
  strides = scatter_strides(dim, out_shape, shape)
  n = out_shape[dim]
  ok = (idx >= 0) & (idx < n)
  addr = np.clip(idx, 0, n - 1) * strides[dim]
  for d, s in enumerate(shape):
    if d != dim and strides[d] and s > 1: addr = addr + np.arange(s).reshape((1,) * d + (s,) + (1,) * (len(shape) - d - 1)) * strides[d]
  addr, vals = np.broadcast_to(addr, shape).reshape(-1), vals.reshape(-1)
  if not ok.all(): addr, vals = addr[ok.reshape(-1)], vals[ok.reshape(-1)]
  if out.dtype.kind == 'f' or out.dtype.name == 'bfloat16':
    out[...] = np.bincount(addr, weights=vals.astype(np.float64), minlength=math.prod(out_shape)).astype(out.dtype)
  else:
    out[...] = 0
    np.add.at(out, addr, vals.astype(out.dtype))
