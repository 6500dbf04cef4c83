"""The SCATTER_ADD template on Triton devices: one program per BLOCK of the values (the index's space, flat), each
value added at its output address with a relaxed `tl.atomic_add` (ops/gather.py has the semantics). The output is
zeroed by the launcher first (`TritonProgram.zero_output`), as the programs cannot order a fill before their adds.
Float atomics make the order of the adds, so the last bits of a sum with repeated indices, vary from run to run on a
GPU (torch's CUDA index_add/embedding backward are nondeterministic too unless asked not to be); a deterministic
sort-and-segment-sum was left out for its extra kernels. Out-of-range indices add nothing (masked); the CHECK in the
kernel that computed the index reports them."""
from __future__ import annotations
import math
from dataclasses import replace
from lazygrad.kernels.ir import Kernel, leaf_st
from lazygrad.kernels.triton.render import TritonProgram, TritonRenderer, elementwise_configs, kernel_args, needs_int64, signature
from lazygrad.ops import Ops
from lazygrad.ops.gather import scatter_strides


def _index_st(k: Kernel):
  """The view the index is loaded through (under its bounds check, when the kernel evaluates one)."""
  index = k.body.srcs[0]
  return leaf_st(index.srcs[0] if index.op is Ops.CHECK else index)


def render_scatter(k: Kernel, interp: bool = False) -> str:
  """The Triton source of a SCATTER_ADD kernel (k.body.op is Ops.SCATTER_ADD, its sources two LOADs)."""
  dim, out_shape = k.body.arg
  shape = tuple(_index_st(k).shape)
  space = replace(k, shape=shape, out_shape=shape)   # the renderer's index machinery runs over the values' space
  r = TritonRenderer(space, interp)
  r.index64 = needs_int64(space) or math.prod(out_shape) >= 2 ** 31 - 2 ** 24
  itype = "tl.int64" if r.index64 else "tl.int32"
  r.indent = 1
  r.emit("pid = tl.program_id(0)")
  r.emit("gidx = pid * BLOCK + tl.arange(0, BLOCK)" + (".to(tl.int64)" if r.index64 else ""))
  r.emit(f"omask = gidx < {math.prod(shape)}")
  r.emit("zero = gidx * 0")
  r.idx = r._unravel("gidx", list(range(len(shape))))
  r.inrange = "omask"
  idx, val = r.expr(k.body.srcs[0]), r.expr(k.body.srcs[1])
  n = out_shape[dim]
  strides = scatter_strides(dim, out_shape, shape)
  r.emit(f"ok = omask & ({idx} >= 0) & ({idx} < {n})   # an out-of-range index adds nothing")
  terms = [f"tl.minimum(tl.maximum({idx}, 0), {max(n - 1, 0)}).to({itype}) * {strides[dim]}"]
  terms += [f"{r.idx[d]} * {strides[d]}" for d in range(len(shape)) if d != dim and strides[d] and shape[d] > 1]
  val = r.cast(val, k.body.srcs[1].dtype, k.buf_dtypes[0])
  r.emit(f"tl.atomic_add(out_ptr + {' + '.join(terms)}, {val}, mask=ok, sem='relaxed')")
  head = f"def {k.name}({', '.join(kernel_args(k) + ['BLOCK: tl.constexpr'])}):"
  return r.header() + "\n".join([head] + r.lines) + "\n"


def scatter_program(k: Kernel, interp: bool = False) -> TritonProgram:
  """The TritonProgram of a SCATTER_ADD kernel: flat programs over the values, the output zeroed before launch."""
  shape = tuple(_index_st(k).shape)
  configs = elementwise_configs(replace(k, shape=shape), interp)
  return TritonProgram(k.name, render_scatter(k, interp), signature(k), configs, zero_output=True)


__all__ = ["render_scatter", "scatter_program"]
