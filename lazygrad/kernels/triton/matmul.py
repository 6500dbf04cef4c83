"""The Triton matmul template: a kernel carrying a `Contraction` (ir.py) runs as a tiled
`tl.dot` with its prologue and epilogue fused on the tiles.

Each program owns a [BM, BN] tile of the (batched) m x n output. It walks k in steps of
BK: the operand expressions (loads and cheap elementwise ops: casts, scales, masks of
padded views, multi-view reshapes of transposes, ...) are rendered on [BM, BK] and
[BK, BN] tiles by the generic expression renderer (TritonRenderer.expr with per-tile
dim -> index mappings), then multiplied by tl.dot into an fp32 accumulator. After the
loop the accumulator is rounded to the REDUCE's dtype (so an fp16 result rounds like
the reference), the epilogue (the rest of Kernel.body: bias, activation, `w - lr * acc`)
is evaluated on the [BM, BN] tile and stored contiguously or through Kernel.out_st.

Launch: program_id(0) walks the m x n tiles in GROUP_M-row groups (the Triton tutorial's
L2-friendly order), program_id(1) is the flat batch index (folded into program_id(0)
past the 65535 grid limit). fp16/bf16 operands dot in their own dtype; fp32 dots with
input_precision="ieee" unless lazygrad.backends.cuda.matmul.allow_tf32 is set.

Left out: split-K (long k with a small m x n output runs one program per output tile)."""
from __future__ import annotations

import math

from lazygrad import backends
from lazygrad.kernels.ir import LEAVES, Expr, Kernel, leaf_st, moving_dims
from lazygrad.kernels.triton.render import (TL_DTYPE, LaunchConfig, TritonProgram, TritonRenderer, kernel_args, next_pow2, signature,
                                            st_index, view_index)
from lazygrad.ops import Ops

DOT_DTYPES = ("float16", "bfloat16", "float32")
MAX_GRID_Y = 65535
GROUP_M = 8
# (BM, BN, BK, num_warps, num_stages): the candidates a cuda device times on first use
CUDA_TILES = ((128, 128, 32, 8, 3), (128, 64, 32, 4, 4), (64, 128, 32, 4, 4), (64, 64, 32, 4, 4))
CUDA_TILES_16BIT = CUDA_TILES + ((128, 256, 64, 8, 3),)
# the interpreter pays per program and per tile op, not per flop: one config, large tiles
INTERP_TILE = (128, 128, 128, 4, 1)


def _reduces(e: Expr) -> set[Expr]:
  return {x for x in e.walk() if x.op is Ops.REDUCE}   # by value: equal copies of the acc are one REDUCE


def _epilogue_leaves(body: Expr) -> list[Expr]:
  """The leaves of the body outside the REDUCE (the loads the epilogue does), each once
  (iterative, each node visited once: the epilogue is a DAG)."""
  out, seen, stack = [], set(), [body]
  while stack:
    e = stack.pop()
    if id(e) in seen or e.op is Ops.REDUCE: continue
    seen.add(id(e))
    if e.op in LEAVES: out.append(e)
    stack.extend(e.srcs)
  return out


def template_ok(k: Kernel) -> bool:
  """Whether the kernel runs as the matmul template: a contraction with m, n and k dims over
  fp16/bf16/fp32, exactly one REDUCE, an epilogue constant along k and a one-view output."""
  c = k.contraction
  if c is None or not (c.m and c.n and c.k) or 0 in k.shape: return False
  if any(dt.name not in DOT_DTYPES for dt in (c.acc.dtype, c.a.dtype, c.b.dtype)): return False
  if len(_reduces(k.body)) != 1: return False
  if any(e.op is Ops.GATHER for e in k.body.walk()): return False   # the generic row kernel loads gathered operands
  if k.out_st is not None and len(k.out_st.views) != 1: return False
  return not any(moving_dims(x) & set(c.k) for x in _epilogue_leaves(k.body))


def dot_dtype(k: Kernel, interp: bool = False) -> str:
  """fp16/bf16 operands go to the tensor cores as they are; anything else as fp32. The
  interpreter (Triton 3.9) multiplies bf16 tiles as their raw uint16 bits: it gets fp32
  tiles (bf16 products are exact in fp32, so only the summation order differs)."""
  dt = k.contraction.a.dtype.name
  if interp and dt == "bfloat16": return "tl.float32"
  return TL_DTYPE[dt] if dt in ("float16", "bfloat16") and k.contraction.b.dtype.name == dt else "tl.float32"


def uses_tf32(k: Kernel) -> bool:
  """Whether the template's fp32 tl.dot runs in TF32: backends.cuda.matmul.allow_tf32 is set (as torch's flag)
  and the dot dtype is float32."""
  return bool(backends.cuda.matmul.allow_tf32) and dot_dtype(k) == "tl.float32"


def _view_reach(v) -> int:
  # +256 per dim: a tile hanging over the edge computes (masked) addresses up to a tile beyond
  return abs(v.offset) + sum((s + 256) * abs(st) for s, st in zip(v.shape, v.strides))


def needs_int64(k: Kernel) -> bool:
  """int64 index math only when some buffer offset (or the output's) can pass int32."""
  reach = math.prod(k.out_shape) + 256 * max(k.shape)
  if k.out_st is not None: reach = max(reach, _view_reach(k.out_st.views[0]))
  for x in k.body.walk():
    if x.op in LEAVES: reach = max([reach] + [_view_reach(v) for v in leaf_st(x).views])
  return reach >= 2 ** 31


class MatmulRenderer(TritonRenderer):
  """TritonRenderer's expression machinery on three tile shapes: A [BM, BK], B [BK, BN] and
  the output [BM, BN]. `self.idx` maps each dim to a broadcastable index (m along rows, n
  along columns, k along A's columns / B's rows, batch a scalar), `self.zero` is a zero
  tensor of the tile's shape (it shapes pointers and VALID masks), `self.inrange` masks
  the tile's overhang past m, n or k."""
  def __init__(self, k: Kernel, name: str, tf32: bool = False, interp: bool = False):
    super().__init__(k, interp)
    self.c, self.name, self.tf32 = k.contraction, name, tf32
    self.dot_dt = dot_dtype(k, interp)
    self.B, self.M, self.N, self.K = self.c.sizes(k.shape)
    self.i64 = needs_int64(k)
    self.prefix, self.zero, self.acc = "x", "zero", "acc"

  def render(self) -> str:
    """The template's Triton source: tile indices, the K loop of tl.dot over the prologue tiles, the epilogue and the masked store."""
    k = self.k
    args = kernel_args(k) + [f"{c}: tl.constexpr" for c in ("BM", "BN", "BK", "GROUP_M")]
    self.indent = 1
    self._tile_indices()
    self._k_loop()
    self._epilogue()
    head = [f"def {self.name}({', '.join(args)}):"]
    return self.header() + "\n".join(head + self.lines) + "\n"

  # ---- indices
  def _shaped(self, idx: dict[int, str], prefix: str, sl: str) -> dict[int, str]:
    out = {}
    for d, name in idx.items():
      out[d] = f"{prefix}{d}"; self.emit(f"{out[d]} = {name}{sl}")
    return out

  def _tile_indices(self):
    c, i64 = self.c, ".to(tl.int64)" if self.i64 else ""
    tiles = f"tl.cdiv({self.M}, BM) * tl.cdiv({self.N}, BN)"
    if self.B <= MAX_GRID_Y: self.emit("pid = tl.program_id(0)"); self.emit("pid_b = tl.program_id(1)")
    else: self.emit(f"pid = tl.program_id(0) % ({tiles})"); self.emit(f"pid_b = tl.program_id(0) // ({tiles})")
    # GROUP_M consecutive programs share a band of A rows and sweep B's columns: operand tiles stay in L2
    self.emit(f"n_tiles = tl.cdiv({self.N}, BN)")
    self.emit("band = GROUP_M * n_tiles")
    self.emit("first_m = (pid // band) * GROUP_M")
    self.emit(f"group_m = tl.minimum(tl.cdiv({self.M}, BM) - first_m, GROUP_M)")
    self.emit("pid_m = first_m + (pid % band) % group_m")
    self.emit("pid_n = (pid % band) // group_m")
    self.emit(f"rm = (pid_m * BM + tl.arange(0, BM)){i64}")
    self.emit(f"rn = (pid_n * BN + tl.arange(0, BN)){i64}")
    if self.i64: self.emit("pid_b = pid_b.to(tl.int64)")
    self.bidx = self._unravel("pid_b", c.batch, "ib")
    self.midx = self._shaped(self._unravel("rm", c.m, "im"), "m", "[:, None]")
    self.nidx = self._shaped(self._unravel("rn", c.n, "in_"), "n", "[None, :]")
    self.emit(f"mmask = rm[:, None] < {self.M}")
    self.emit(f"nmask = rn[None, :] < {self.N}")
    it = "tl.int64" if self.i64 else "tl.int32"
    for name, shape in (("zero_a", "BM, BK"), ("zero_b", "BK, BN"), ("zero_o", "BM, BN")):
      self.emit(f"{name} = tl.zeros([{shape}], dtype={it})")

  # ---- the k loop: operand tiles and tl.dot
  def _operand(self, e: Expr, name: str, idx: dict[int, str], zero: str, mask: str) -> str:
    self.names, self.idx, self.zero, self.inrange, self.prefix = {}, idx, zero, mask, f"{name}_"
    val = self.expr(e)
    # a masked load reads 0 past the edge, a computed prologue (exp, where, + 1) may not: zero it,
    # or k-overhang garbage would enter the dot
    plain = e.op is Ops.LOAD or (e.op is Ops.CAST and e.srcs[0].op is Ops.LOAD)
    if not plain: self.emit(f"{name} = tl.where({mask}, {val}, 0)"); val = name
    return val if TL_DTYPE[e.dtype.name] == self.dot_dt else f"{val}.to({self.dot_dt})"

  def _k_loop(self):
    c, i64 = self.c, ".to(tl.int64)" if self.i64 else ""
    self.emit("acc = tl.zeros([BM, BN], dtype=tl.float32)")
    self.emit(f"for k0 in range(0, {self.K}, BK):")
    self.indent += 1
    self.emit(f"rk = (k0 + tl.arange(0, BK)){i64}")
    kidx = self._unravel("rk", c.k, "ik")
    ka, kb = self._shaped(kidx, "ka", "[None, :]"), self._shaped(kidx, "kb", "[:, None]")
    self.emit(f"kmask = rk < {self.K}")
    self.emit("mask_a = mmask & kmask[None, :]")
    self.emit("mask_b = kmask[:, None] & nmask")
    a = self._operand(c.a, "a", {**self.bidx, **self.midx, **ka}, "zero_a", "mask_a")
    b = self._operand(c.b, "b", {**self.bidx, **self.nidx, **kb}, "zero_b", "mask_b")
    prec = "" if self.dot_dt != "tl.float32" else ', input_precision="tf32"' if self.tf32 else ', input_precision="ieee"'
    self.emit(f"acc = tl.dot({a}, {b}, acc{prec}, out_dtype=tl.float32)")
    self.indent -= 1

  # ---- epilogue and store
  def _epilogue(self):
    k, c = self.k, self.c
    if c.acc.dtype.name != "float32":   # round like the reference's REDUCE before the epilogue sees it
      self.emit(f"acc = acc.to({TL_DTYPE[c.acc.dtype.name]})")
    self.emit("mask_o = mmask & nmask")
    idx = {**self.bidx, **self.midx, **self.nidx}
    self.names, self.idx, self.zero, self.inrange, self.prefix = {}, idx, "zero_o", "mask_o", "e_"
    val = self.cast(self.expr(k.body), k.body.dtype, k.buf_dtypes[0])
    mask = "mask_o"
    if k.out_st is None:   # contiguous over out_shape (reduced dims are 1 there)
      strides, acc = {}, 1
      for d in reversed(range(len(k.out_shape))): strides[d], acc = acc, acc * k.out_shape[d]
      addr = " + ".join(["zero_o"] + [f"{i} * {strides[d]}" if strides[d] != 1 else i for d, i in idx.items()])
    else:   # e.g. a weight update stored in W's (transposed) layout
      a, valid = view_index(k.out_st.views[0], [idx.get(d, "0") for d in range(len(k.shape))])
      addr = f"zero_o + {a}"
      if valid: mask = f"{mask} & {valid}"
    self.emit(f"tl.store(out_ptr + {addr}, {val}, mask={self.guarded(mask)})")

  # ---- the generic expression renderer, pointed at the current tile
  def expr(self, e: Expr) -> str:
    """Emit e's code on the current tile and return its variable (a REDUCE is the accumulator; an equal expression is emitted once)."""
    if e.op is Ops.REDUCE: return self.acc
    if e in self.names: return self.names[e]   # by value: the epilogue repeats acc + bias in where(acc + b > 0, ...)
    code = self._code(e, [self.expr(s) for s in e.srcs])
    name = f"{self.prefix}{len(self.names)}"
    self.emit(f"{name} = {code}")
    self.names[e] = name
    return name

  def load_index(self, st) -> tuple[str, str]:
    """(address, validity mask, falsy when every element is valid) code for reading through st on the current tile;
    emits the index lines it needs."""
    idx = [self.idx.get(d, "0") if self.k.shape[d] != 1 else "0" for d in range(len(self.k.shape))]
    addr, valid, lines = st_index(st, idx, self.tmp, self.zero)
    for ln in lines: self.emit(ln)
    return f"{self.zero} + {addr}", valid

  def _code(self, e: Expr, s: list[str]) -> str:
    if e.op is Ops.VALID:
      _, valid = self.load_index(e.arg)
      return f"({self.zero} == 0) & {valid}" if valid else f"({self.zero} == 0)"
    return super()._code(e, s)


def program_name(k: Kernel) -> str:
  """The kernel's name, with `_tf32` appended when uses_tf32(k) (the flag changes the source)."""
  return k.name + ("_tf32" if uses_tf32(k) else "")   # the flag changes the source: a different program


def render_matmul(k: Kernel, interp: bool = False) -> str:
  """The tl.dot template's source for a kernel carrying a Contraction."""
  return MatmulRenderer(k, program_name(k), uses_tf32(k), interp).render()


def _fit(block: int, size: int) -> int:
  """A tile edge no bigger than the problem needs (tl.dot wants >= 16)."""
  return max(16, min(block, next_pow2(size)))


def launch_grid(b: int, m: int, n: int, bm: int, bn: int) -> tuple:
  """The grid for b batches of an m x n output in bm x bn tiles: (tiles, b), or (tiles * b,) when b passes MAX_GRID_Y."""
  tiles = -(-m // bm) * -(-n // bn)
  return (tiles, b) if b <= MAX_GRID_Y else (tiles * b,)


def matmul_configs(k: Kernel, interp: bool) -> tuple[LaunchConfig, ...]:
  """interp: one large-tile config. cuda: a few candidates, fitted to the problem and
  deduplicated; the device times them on first use (configs[0] is the default)."""
  b, m, n, kk = k.contraction.sizes(k.shape)
  cands = (INTERP_TILE,) if interp else CUDA_TILES_16BIT if dot_dtype(k) != "tl.float32" else CUDA_TILES
  configs, seen = [], set()
  for bm, bn, bk, warps, stages in cands:
    bm, bn, bk = _fit(bm, m), _fit(bn, n), _fit(bk, kk)
    if (bm, bn, bk) in seen: continue
    seen.add((bm, bn, bk))
    warps = min(warps, 4) if bm * bn <= 64 * 64 else warps   # a small tile has too little work for 8 warps
    configs.append(LaunchConfig({"BM": bm, "BN": bn, "BK": bk, "GROUP_M": GROUP_M}, launch_grid(b, m, n, bm, bn),
                                num_warps=warps, num_stages=stages))
  return tuple(configs)


def matmul_program(k: Kernel, interp: bool) -> TritonProgram:
  """The TritonProgram of a contraction kernel: template source, signature and matmul_configs(k, interp)."""
  name = program_name(k)   # (the interp source differs from cuda's only for bf16 and the accurate primitives, and never meets it)
  return TritonProgram(name, render_matmul(k, interp), signature(k), matmul_configs(k, interp))
