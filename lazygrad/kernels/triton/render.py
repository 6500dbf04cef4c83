"""Kernel -> Triton source.

An elementwise kernel: each program owns BLOCK flat output indices; per-dim indices
come from div/mod of the flat index; every LOAD turns its ShapeTracker into pointer
offsets and a mask. A reduce (row) kernel: each program owns BLOCK_O outputs (flat over
the kept dims). Rows up to PERSISTENT_MAX_R long are persistent: one [BLOCK_O, BLOCK_R]
tile holds whole rows, each input is loaded once and every REDUCE and the output are
computed from it. Longer rows loop over the reduced extent in chunks of BLOCK_R,
accumulating per-lane tiles reduced once at the end (fp32 for fp16/bf16), with as few
loops as the reduces' dependencies allow: online softmax (running max and rescaled sum)
and Welford (mean and M2) put a max+sum(exp) or a sum+sum of squared deviations in one
statistics pass. A float max propagates NaN (one integer max, see _finish). Index math is int32
unless a buffer offset may not fit (needs_int64).

Only pointer arithmetic (no make_block_ptr), so the source is valid on Triton 3.6-3.9."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from lazygrad.kernels.common import BINARY, OPS, UNARY, acc_dtype
from lazygrad.kernels.ir import READS, Expr, Kernel, leaf_st, moving_dims
from lazygrad.ops import Ops
from lazygrad.ops.view import ShapeTracker, View, affine_split

TL_DTYPE = {"bool": "tl.int1", "uint8": "tl.uint8", "int8": "tl.int8", "int16": "tl.int16", "int32": "tl.int32",
            "int64": "tl.int64", "float16": "tl.float16", "bfloat16": "tl.bfloat16", "float32": "tl.float32", "float64": "tl.float64"}
PTR_DTYPE = {"bool": "*i1", "uint8": "*u8", "int8": "*i8", "int16": "*i16", "int32": "*i32", "int64": "*i64",
             "float16": "*fp16", "bfloat16": "*bf16", "float32": "*fp32", "float64": "*fp64"}
_UNARY = {op: OPS[op].triton for op in UNARY if (OPS[op].triton or "").startswith("tl.")}   # the math functions
_INFIX = {op: OPS[op].triton for op in BINARY if OPS[op].triton and not OPS[op].triton.startswith("tl.")}


def _lit(v) -> str:
  if isinstance(v, bool): return "1" if v else "0"
  if isinstance(v, float) and not math.isfinite(v): return f'float("{v}")'
  return repr(v)


def view_index(v: View, idx: list[str]) -> tuple[str, str]:
  """(address, validity) of a View at per-dim index expressions ("0" for size-1 dims)."""
  terms = [f"{v.offset}"] + [f"{i} * {st}" if st != 1 else i for i, st in zip(idx, v.strides) if st != 0 and i != "0"]
  conds = []
  if v.mask:
    for i, (lo, hi), s in zip(idx, v.mask, v.shape):
      if (lo, hi) == (0, s): continue
      if i == "0":
        if not lo <= 0 < hi: conds.append("False")
        continue
      if lo > 0: conds.append(f"({i} >= {lo})")
      if hi < s: conds.append(f"({i} < {hi})")
  return " + ".join(terms), " & ".join(conds)


def _affine_inner(inner: View, outer: View, idx: list[str]) -> list[str] | None:
  """Per-dim index expressions of `inner` when outer's flat address unravels over it without carries
  (view.affine_split): sums of outer's indices times small coefficients, no div/mod. A conv window over a
  padded input reads so: ih = oh * stride + kh * dilation, checked against the padding mask."""
  split = affine_split(inner, outer)
  if split is None: return None
  cidx, coef, _ = split
  out = []
  for k in range(len(inner.shape)):
    if inner.shape[k] == 1: out.append("0"); continue
    terms = [(i if c == 1 else f"{i} * {c}") for d, (i, cs) in enumerate(zip(idx, (coef.get(d, {}) for d in range(len(idx)))))
             if (c := cs.get(k, 0)) != 0 and i != "0"]
    if cidx[k] != 0 or not terms: terms.append(str(cidx[k]))
    out.append(terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")")
  return out


def st_index(st: ShapeTracker, idx: list[str], tmp, zero: str = "zero") -> tuple[str, str, list[str]]:
  """Address and validity through a stack of views; returns helper lines too. An inner view is
  indexed per dim from the outer one's indices when that needs no carries (_affine_inner), else
  by unravelling the outer view's flat address (div/mod). zero names a tensor of zeros of the tile:
  a constant index is added to it, so the inner views' masks are tensors (a Python bool in a load mask fails)."""
  lines = []
  addr, valid = view_index(st.views[-1], idx)
  conds = [valid] if valid else []
  outer, outer_idx = st.views[-1], idx
  for v in reversed(st.views[:-1]):
    inner_idx = _affine_inner(v, outer, outer_idx)
    if inner_idx is not None:
      named = []
      for i in inner_idx:
        if i == "0" or i.isidentifier(): named.append(i); continue
        name = tmp(); lines.append(f"{name} = {zero} + {i}" if i.lstrip("-").isdigit() else f"{name} = {i}"); named.append(name)
      inner_idx = named
    else:
      flat = tmp()
      lines.append(f"{flat} = {zero} + {addr}" if addr.lstrip("-").isdigit() else f"{flat} = {addr}")
      inner_idx, rest = [], flat
      for d in reversed(range(len(v.shape))):
        if v.shape[d] == 1: inner_idx.append("0"); continue
        name = tmp()
        lines.append(f"{name} = ({rest}) % {v.shape[d]}" if d > 0 else f"{name} = {rest}")
        if d > 0:
          nxt = tmp(); lines.append(f"{nxt} = ({rest}) // {v.shape[d]}"); rest = nxt
        inner_idx.append(name)
      inner_idx.reverse()
    addr, valid = view_index(v, inner_idx)
    if valid: conds.append(valid)
    outer, outer_idx = v, inner_idx
  return addr, " & ".join(c for c in conds if c), lines


# reduced extents up to this run as persistent row kernels (one tile per row, no loops); longer
# ones loop over the extent in BLOCK_R chunks. A pure function of the kernel: the source is cached by key.
PERSISTENT_MAX_R = 16384


def is_persistent(k: Kernel) -> bool:
  """Whether a reduce kernel's reduced extent is at most PERSISTENT_MAX_R: whole rows in one tile, no loop."""
  return math.prod(k.shape[d] for d in k.reduce_axes) <= PERSISTENT_MAX_R


def needs_int64(k: Kernel) -> bool:
  """Index math in int64 only when an offset can pass int32: the iteration space's size, or
  offset + sum((size - 1) * |stride|) of any view of any buffer (plus room for a block past the end)."""
  reach = math.prod(k.shape)
  sts = [leaf_st(x) for x in k.body.walk() if x.op in READS] + ([k.out_st] if k.out_st is not None else [])
  # a gather adds up to (n - 1) * |stride| to its pinned view's address
  reach = max([reach] + [(x.arg[3] - 1) * abs(x.arg[2]) + sum(v.offset + sum((s - 1) * abs(st_) for s, st_ in zip(v.shape, v.strides))
                                                           for v in x.arg[1].views) for x in k.body.walk() if x.op is Ops.GATHER])
  for st in sts:
    for v in st.views: reach = max(reach, abs(v.offset) + sum((s - 1) * abs(st_) for s, st_ in zip(v.shape, v.strides)))
  return reach >= 2 ** 31 - 2 ** 24


def _acc(red: Expr) -> tuple[str, str]:
  """(accumulator dtype, identity) of a REDUCE, the dtype by common.acc_dtype (fp32 for fp16/bf16, int32 for bool)."""
  dt = red.dtype
  acc_dt = TL_DTYPE[acc_dtype(dt.name)]
  if red.arg[0] is Ops.ADD or dt.is_bool: return acc_dt, "0"
  return acc_dt, "float('-inf')" if dt.is_float else str(-(2 ** (8 * dt.itemsize - 1))) if dt.kind == 'i' else "0"


def _reads(e: Expr, r: Expr) -> bool:
  return any(x is r for x in e.walk())


def _peel(e: Expr) -> Expr:
  while e.op is Ops.CAST and e.dtype.is_float and e.srcs[0].dtype.is_float: e = e.srcs[0]
  return e


def _per_row(e: Expr, axes) -> bool:
  """Whether e is constant along the reduced axes (REDUCEs are; leaves that do not move along them)."""
  seen = set()
  def ok(x):
    if id(x) in seen or x.op is Ops.REDUCE: return True
    seen.add(id(x))
    if x.op in READS: return not moving_dims(x) & set(axes)
    return all(ok(s) for s in x.srcs)
  return ok(e)


def _split(e: Expr, r: Expr, axes):
  """(A, B) with e == A + B, A not reading r and B per row (None for a zero part), or None."""
  if not _reads(e, r): return e, None
  if _per_row(e, axes): return None, e
  s = e.srcs
  if e.op is Ops.ADD and (a := _split(s[0], r, axes)) and (b := _split(s[1], r, axes)):
    join = lambda x, y: y if x is None else x if y is None else replace(e, srcs=(x, y))
    return join(a[0], b[0]), join(a[1], b[1])
  if e.op is Ops.NEG and (a := _split(s[0], r, axes)):
    return tuple(None if x is None else replace(e, srcs=(x,)) for x in a)
  if e.op is Ops.MUL and e.dtype.is_float:
    for i in (0, 1):
      c = s[1 - i]
      if not _reads(c, r) and _per_row(c, axes) and (a := _split(s[i], r, axes)):
        return tuple(None if x is None else replace(e, srcs=(x, c) if i == 0 else (c, x)) for x in a)
  return None


def _online_softmax(r: Expr, m: Expr, axes):
  """sum(exp(A + B(m))) (or exp2) of a float max m: ("online", r, m, B)."""
  if r.arg[0] is not Ops.ADD or m.arg[0] is not Ops.MAX or not (r.dtype.is_float and m.dtype.is_float): return None
  e = _peel(r.srcs[0])
  if e.op not in (Ops.EXP, Ops.EXP2) or (ab := _split(e.srcs[0], m, axes)) is None or ab[1] is None: return None
  return "online", r, m, ab[1]


def _welford(r: Expr, s: Expr, axes):
  """sum(D * D) with D = A + B(s) (e.g. A - mean): ("welford", r, s, (A, B))."""
  if r.arg[0] is not Ops.ADD or not r.dtype.is_float: return None
  e = _peel(r.srcs[0])
  if e.op is not Ops.MUL or e.srcs[0] != e.srcs[1] or not e.dtype.is_float: return None
  ab = _split(e.srcs[0], s, axes)
  if ab is None or ab[0] is None or ab[1] is None: return None
  return "welford", r, s, ab


class TritonRenderer:
  """Kernel -> Triton source on the generic path: elementwise kernels over flat BLOCKs, reduce (row) kernels over
  BLOCK_O rows x BLOCK_R reduced elements. MatmulRenderer reuses its expression machinery."""
  def __init__(self, k: Kernel, interp: bool = False):
    self.k, self.interp = k, interp   # interp: Triton's interpreter, which cannot call libdevice (see _accurate)
    self.libdevice = False            # whether the source calls libdevice (then it imports it)
    self.lines: list[str] = []
    self.names: dict[int, str] = {}
    self.ntmp = 0
    self.is_reduce = bool(k.reduce_axes)
    self.index64 = needs_int64(k)
    self.nx = 0
    self.zero = "zero"   # a zero tensor of the tile's shape (the matmul template switches it per tile)

  def tmp(self) -> str:
    """A fresh temporary name (t1, t2, ...)."""
    self.ntmp += 1
    return f"t{self.ntmp}"

  def emit(self, line: str):
    """Append one source line at the current indent."""
    self.lines.append("  " * self.indent + line)

  def render(self) -> str:
    """The kernel's Triton source: imports and one function named after the kernel, taking out_ptr, the input
    pointers, the runtime vars and the block constexprs."""
    k = self.k
    args = kernel_args(k)
    self.indent = 1
    if self.is_reduce: self._render_reduce()
    else: self._render_elementwise()
    blocks = "BLOCK_O: tl.constexpr, BLOCK_R: tl.constexpr" if self.is_reduce else "BLOCK: tl.constexpr"
    head = [f"def {k.name}({', '.join(args + [blocks])}):"]
    return self.header() + "\n".join(head + self.lines) + "\n"

  def header(self) -> str:
    """The source's imports (libdevice only when an accurate primitive calls it)."""
    return "import triton\nimport triton.language as tl\n" + ("from triton.language.extra import libdevice\n" if self.libdevice else "") + "\n\n"

  def guarded(self, mask: str) -> str:
    """A store's mask; in a guarded kernel also "no bounds check failed" (slot 0 of the error buffer, read per lane
    through the tile's zero: the interpreter rejects a scalar in a store's mask)."""
    return f"{mask} & (tl.load(err_ptr + {self.zero}) == 0)" if self.k.guard else mask

  def check(self, e: Expr, val: str) -> str:
    """Ops.CHECK: val unchanged; where it is outside [lo, hi) (inside the tile), record it in the error buffer
    (runtime/errors.py): masked relaxed atomics, so nothing is written while every index is in range."""
    lo, hi, site = e.arg
    v, big, small, p = self.tmp(), self.tmp(), self.tmp(), self.tmp()
    self.emit(f"{v} = ({val}).to(tl.int64)")
    self.emit(f"{big} = ({v} >= {hi}) & {self.inrange}")
    self.emit(f"{small} = ({v} < {lo}) & {self.inrange}")
    self.emit(f"{p} = err_ptr + ({big} | {small}).to(tl.int64) * 0   # the tile's shape")
    self.emit(f"tl.atomic_or({p}, 1, mask={big} | {small}, sem='relaxed')")
    self.emit(f"{p} = {p} + 1 + 3 * (ebase + {site})")
    self.emit(f"tl.atomic_or({p}, {big}.to(tl.int64) + 2 * {small}.to(tl.int64), mask={big} | {small}, sem='relaxed')")
    self.emit(f"tl.atomic_max({p} + 1, {v}, mask={big}, sem='relaxed')")
    self.emit(f"tl.atomic_min({p} + 2, {v}, mask={small}, sem='relaxed')")
    return val

  def gather(self, e: Expr, index: str) -> str:
    """Ops.GATHER: a load at the pinned view's address plus the index times the gathered dim's stride. The index is
    clamped into [0, n) first, so an out-of-range one (its CHECK reports it) still reads inside the buffer."""
    slot, st, stride, n = e.arg
    if n == 0: return f"(zero * 0).to({TL_DTYPE[e.dtype.name]})"   # nothing to read (its CHECK reports any index)
    addr, valid = self.load_index(st)
    c = self.tmp()
    self.emit(f"{c} = tl.minimum(tl.maximum({index}, 0), {n - 1}).to({'tl.int64' if self.index64 else 'tl.int32'})")
    mask = f"{self.inrange} & {valid}" if valid else self.inrange
    return f"tl.load(in{slot}_ptr + {addr} + {c} * {stride}, mask={mask}, other=0)"

  # ---- index setup
  def _unravel(self, flat: str, dims, prefix: str = "i") -> dict[int, str]:
    """Per-dim index names (`<prefix><dim>`) of a row-major flat index over `dims` (size-1 dims skipped)."""
    idx, rest = {}, flat
    live = [d for d in dims if self.k.shape[d] != 1]
    for n, d in enumerate(reversed(live)):
      name = f"{prefix}{d}"
      if n == len(live) - 1: self.emit(f"{name} = {rest}")
      else:
        self.emit(f"{name} = {rest} % {self.k.shape[d]}")
        nxt = self.tmp(); self.emit(f"{nxt} = {rest} // {self.k.shape[d]}"); rest = nxt
      idx[d] = name
    return idx

  def _render_elementwise(self):
    k = self.k
    n = math.prod(k.shape)
    self.emit("pid = tl.program_id(0)")
    self.emit("gidx = pid * BLOCK + tl.arange(0, BLOCK)" + (".to(tl.int64)" if self.index64 else ""))
    self.emit(f"omask = gidx < {n}")
    self.emit("zero = gidx * 0")
    self.idx = self._unravel("gidx", list(range(len(k.shape))))
    self.inrange = "omask"
    val = self.expr(k.body)
    self.emit(f"tl.store(out_ptr + gidx, {self.cast(val, k.body.dtype, k.buf_dtypes[0])}, mask={self.guarded('omask')})")

  def _render_reduce(self):
    """A row kernel (every REDUCE reduces the same axes). Persistent (reduced extent <=
    PERSISTENT_MAX_R): one [BLOCK_O, BLOCK_R] tile covers whole rows, each input is loaded
    once, every REDUCE and the output are computed from the tiles, no loops. Looped: the
    reduces run in as few loops over the reduced extent as their dependencies allow (see
    _passes), then the result is stored per row, or by a last loop when the kernel's output
    is the full space."""
    k = self.k
    reduces = [e for e in k.body.walk() if e.op is Ops.REDUCE]
    axes = reduces[0].arg[1]
    keep = [d for d in range(len(k.shape)) if d not in axes]
    self.n_out, self.n_red = math.prod(k.shape[d] for d in keep), math.prod(k.shape[d] for d in axes)
    i64 = ".to(tl.int64)" if self.index64 else ""
    self.emit("pid = tl.program_id(0)")
    self.emit(f"oidx = (pid * BLOCK_O + tl.arange(0, BLOCK_O)){i64}[:, None]")
    self.emit(f"omask = oidx < {self.n_out}")
    self.emit("zero = oidx * 0")
    self.row_idx = self._unravel("oidx", keep)
    self.reduced: dict[int, str] = {}
    self.red_n = {id(r): n for n, r in enumerate(reduces)}
    persistent = self.n_red <= PERSISTENT_MAX_R
    if persistent:   # BLOCK_R = next_pow2(n_red) (reduce_configs): the tile is the whole row
      self.emit(f"tl.static_assert(BLOCK_R >= {self.n_red})")
      self._reduced_index(axes, "tl.arange(0, BLOCK_R)", i64)
      for red in reduces:
        # rv, not v: v0, v1, ... are the launch scalars (the rand seed and offset, lower.py var_names)
        n, (acc_dt, ident) = self.red_n[id(red)], _acc(red)
        self.emit(f"rv{n} = tl.where(omask & rmask, {self._src(red, acc_dt)}, {ident})")
        self.reduced[id(red)] = self._finish(red, f"rv{n}", acc_dt)
    else:
      for group in self._passes(reduces): self._reduce_pass(group, axes, i64)
    row_output = tuple(k.out_shape) != tuple(k.shape) or k.out_st is not None   # (reduced dims may all be size 1)
    if row_output:
      # every value left is per row: reduced dims index as 0 (their strides are 0)
      self.names, self.idx, self.inrange = {}, dict(self.row_idx), "omask"
      val = self.expr(k.body)
      if k.out_st is None: addr = "oidx + zero"
      else:   # a permuted per-row epilogue: each row's value lands through the output view
        addr = "zero + " + view_index(k.out_st.views[0], [self.row_idx.get(d, "0") for d in range(len(k.shape))])[0]
      self.emit(f"tl.store(out_ptr + {addr}, {self.cast(val, k.body.dtype, k.buf_dtypes[0])}, mask={self.guarded('omask')})")
      return
    if not persistent: self._loop_over_reduced(axes, i64)
    val = self.expr(k.body)   # persistent: the tiles the reduces read are reused (self.names)
    strides, acc = [0] * len(k.shape), 1
    for d in reversed(range(len(k.shape))): strides[d], acc = acc, acc * k.shape[d]
    # "ridx * 0" keeps the pointer [BLOCK_O, BLOCK_R] like the mask even when every reduced dim has size 1
    flat = " + ".join(["zero", "ridx * 0"] + [f"{self.idx[d]} * {strides[d]}" for d in range(len(k.shape)) if d in self.idx])
    self.emit(f"tl.store(out_ptr + {flat}, {self.cast(val, k.body.dtype, k.buf_dtypes[0])}, mask={self.guarded('omask & rmask')})")
    if not persistent: self.indent -= 1

  def _reduced_index(self, axes, ridx: str, i64: str):
    self.emit(f"ridx = ({ridx}){i64}[None, :]")
    self.emit(f"rmask = ridx < {self.n_red}")
    self.names = {}   # values inside a loop are per-chunk tiles: nothing carries over
    self.idx = dict(self.row_idx)
    self.idx.update(self._unravel("ridx", list(axes)))
    self.inrange = "omask & rmask"

  def _loop_over_reduced(self, axes, i64):
    self.emit(f"for r0 in range(0, {self.n_red}, BLOCK_R):")
    self.indent += 1
    self._reduced_index(axes, "r0 + tl.arange(0, BLOCK_R)", i64)

  def _src(self, red: Expr, acc_dt: str) -> str:
    return self.cast(self.expr(red.srcs[0]), red.srcs[0].dtype, None, acc_dt)

  def _finish(self, red: Expr, tile: str, acc_dt: str) -> str:
    """Reduce a [BLOCK_O, BLOCK_R] tile along axis 1 into red{n} ([BLOCK_O, 1], the REDUCE's dtype).
    A float max must propagate NaN, which tl.max may drop (and has no propagate_nan in Triton
    3.6-3.9): it is one tl.max over the float's bits as a signed int, negatives' magnitude bits
    flipped so the ints order like the floats, NaN mapped above +inf, then mapped back. (A
    tl.reduce with a NaN-propagating combine function is as fast on a GPU, but Triton's
    interpreter runs custom combines element by element in Python.)"""
    n = self.red_n[id(red)]
    out = f"red{n}"
    if red.arg[0] is Ops.ADD: self.emit(f"{out} = tl.sum({tile}, axis=1)[:, None]")
    elif red.dtype.is_float:   # one integer max over an order-preserving key of the bits, NaN above +inf
      it, sh, mag, nan = ("tl.int64", 63, "0x7FFFFFFFFFFFFFFF", "0x7FF8000000000000") if acc_dt == "tl.float64" else \
                         ("tl.int32", 31, "0x7FFFFFFF", "0x7FC00000")
      self.emit(f"b{n} = {tile}.to({it}, bitcast=True)")
      self.emit(f"k{n} = tl.max(tl.where({tile} != {tile}, {nan}, b{n} ^ ((b{n} >> {sh}) & {mag})), axis=1)[:, None]")
      self.emit(f"{out} = (k{n} ^ ((k{n} >> {sh}) & {mag})).to({acc_dt}, bitcast=True)")
    else: self.emit(f"{out} = tl.max({tile}, axis=1)[:, None]")
    if acc_dt != TL_DTYPE[red.dtype.name]: self.emit(f"{out} = {self.cast(out, None, red.dtype)}")
    return out

  def _fresh(self, e: Expr, subst: dict[int, str]) -> str:
    """e rendered with some REDUCEs standing for other values (running or per-lane ones):
    what does not read them is shared (CSE), the rest is rendered under new names."""
    names, reduced = self.names, self.reduced
    stale, self.reduced = set(subst), {**reduced, **subst}
    for x in self.k.body.walk():
      if any(id(s) in stale for s in x.srcs): stale.add(id(x))
    self.names = {i: v for i, v in names.items() if i not in stale}
    try: return self.expr(e)
    finally: self.names, self.reduced = names, reduced

  # ---- looped row kernels: reduces grouped into passes
  def _passes(self, reduces: list[Expr]) -> list[list[tuple]]:
    """Loops over the reduced extent, each a list of (kind, reduce, partner, B): a reduce runs
    in the loop after the last reduce it reads, so independent reduces share a loop. Two
    patterns join the loop of the reduce they read instead (one statistics pass):
      online softmax: sum(exp(A + B(m))) (or exp2) where m is a float max, A does not read m and
        B is per row: each lane keeps a running max and a sum rescaled by exp(B(m_new) - B(m_old));
      Welford: sum(D * D) with D = A - s * c, s = sum(A), c a constant (var, layer_norm):
        each lane keeps count, mean and M2, merged around the kernel's mean s * c at the end."""
    level, plan = {}, {}
    for r in reduces:
      deps = [d for d in reduces if d is not r and _reads(r.srcs[0], d)]
      lv = 1 + max(level[id(d)] for d in deps) if deps else 0
      for d in deps:
        if level[id(d)] != lv - 1 or id(d) in plan or any(level[id(o)] >= lv - 1 for o in deps if o is not d): continue
        if (p := _online_softmax(r, d, self.k.reduce_axes)) or (p := _welford(r, d, self.k.reduce_axes)):
          plan[id(r)], lv = p, lv - 1
          break
      level[id(r)] = lv
    groups = [[] for _ in range(max(level.values()) + 1)]
    for r in reduces: groups[level[id(r)]].append(plan.get(id(r), ("plain", r, None, None)))
    return groups

  def _reduce_pass(self, group: list[tuple], axes, i64):
    partners = {id(p) for kind, _, p, _ in group if kind == "online"}
    for kind, r, _p, _ in group:
      n, (acc_dt, ident) = self.red_n[id(r)], _acc(r)
      if kind == "welford":
        for a in ("cnt", "mean", "m2"): self.emit(f"{a}{n} = tl.zeros([BLOCK_O, BLOCK_R], {acc_dt})")
      else: self.emit(f"acc{n} = tl.full([BLOCK_O, BLOCK_R], {ident}, {acc_dt})")
    self._loop_over_reduced(axes, i64)
    for kind, r, p, b in group:
      n, (acc_dt, ident) = self.red_n[id(r)], _acc(r)
      if kind == "plain":
        self.emit(f"rv{n} = tl.where(omask & rmask, {self._src(r, acc_dt)}, {ident})")
        if id(r) in partners: self.emit(f"prev{n} = acc{n}")
        if r.arg[0] is Ops.ADD: self.emit(f"acc{n} = acc{n} + rv{n}")
        elif r.dtype.is_float: self.emit(f"acc{n} = tl.maximum(acc{n}, rv{n}, propagate_nan=tl.PropagateNan.ALL)")
        else: self.emit(f"acc{n} = tl.maximum(acc{n}, rv{n})")
      elif kind == "online":   # lane reference: the running max, 0 while it is -inf (exp(-inf - -inf) is nan)
        m = self.red_n[id(p)]
        self.emit(f"ref{m} = tl.where(acc{m} == float('-inf'), 0.0, acc{m})")
        self.emit(f"old{m} = tl.where(prev{m} == float('-inf'), 0.0, prev{m})")
        mref = f"ref{m}" if TL_DTYPE[p.dtype.name] == _acc(p)[0] else f"ref{m}.to({TL_DTYPE[p.dtype.name]})"
        term = self.cast(self._fresh(r.srcs[0], {id(p): mref}), r.srcs[0].dtype, None, acc_dt)
        step = self._scale(r, b, f"ref{m}", f"old{m}", p)
        self.emit(f"acc{n} = tl.where(acc{n} == 0, acc{n}, acc{n} * {step}) + tl.where(omask & rmask, {term}, 0)")
      else:   # welford on A (for var: the mean's source, already loaded: CSE)
        a = b[0]
        self.emit(f"a{n} = {self.cast(self.expr(a), a.dtype, None, acc_dt)}")
        self.emit(f"cnt{n} = cnt{n} + (omask & rmask).to({acc_dt})")
        self.emit(f"d{n} = a{n} - mean{n}")
        self.emit(f"mean{n} = mean{n} + tl.where(omask & rmask, d{n} / tl.maximum(cnt{n}, 1.0), 0.0)")
        self.emit(f"m2{n} = m2{n} + tl.where(omask & rmask, d{n} * (a{n} - mean{n}), 0.0)")
    self.indent -= 1
    self.names = {}
    for kind, r, p, b in group:
      n, (acc_dt, ident) = self.red_n[id(r)], _acc(r)
      if kind == "plain": self.reduced[id(r)] = self._finish(r, f"acc{n}", acc_dt)
      elif kind == "online":   # lanes rescaled to the row's max (lanes that summed nothing stay 0)
        m = self.red_n[id(p)]
        self.emit(f"ref{m} = tl.where(acc{m} == float('-inf'), 0.0, acc{m})")
        step = self._scale(r, b, f"red{m}", f"ref{m}", p)
        self.emit(f"acc{n} = tl.where(acc{n} == 0, acc{n}, acc{n} * {step})")
        self.reduced[id(r)] = self._finish(r, f"acc{n}", acc_dt)
      else:   # Chan's merge of the lanes around the kernel's own mean (-B = s * c)
        self.emit(f"dm{n} = mean{n} + ({self._fresh(b[1], {})}).to({acc_dt})")
        self.emit(f"acc{n} = tl.where(cnt{n} > 0, m2{n} + cnt{n} * dm{n} * dm{n}, 0.0)")
        self.reduced[id(r)] = self._finish(r, f"acc{n}", acc_dt)

  def _scale(self, r: Expr, b: Expr, new: str, old: str, m: Expr) -> str:
    """exp(B(new) - B(old)) (exp2 for an exp2 sum): moves a lane's sum from reference old to new."""
    bn, bo = (self._fresh(b, {id(m): x}) for x in (new, old))
    fn = "tl.exp2" if _peel(r.srcs[0]).op is Ops.EXP2 else "tl.exp"
    return f"{fn}(({bn}).to(tl.float32) - ({bo}).to(tl.float32))"

  # ---- expressions
  def cast(self, val: str, src_dt, out_dt, out_tl: str | None = None) -> str:
    """Code converting val from src_dt to out_dt: `(val != 0)` for bool, val itself when the dtypes agree, else
    `.to(...)` (out_tl overrides the target tl type)."""
    tl_out = out_tl or TL_DTYPE[out_dt.name]
    if out_dt is not None and out_dt.is_bool: return f"({val} != 0)"
    if src_dt is not None and out_dt is not None and src_dt == out_dt: return val
    return f"({val}).to({tl_out})"

  def load_index(self, st: ShapeTracker) -> tuple[str, str]:
    """(address, validity mask, falsy when every element is valid) code for reading through st at the tile's indices;
    emits the index lines it needs."""
    idx = [self.idx.get(d, "0") if self.k.shape[d] != 1 else "0" for d in range(len(self.k.shape))]
    addr, valid, lines = st_index(st, idx, self.tmp)
    for ln in lines: self.emit(ln)
    return f"zero + {addr}", valid

  def expr(self, e: Expr) -> str:
    """Emit e's code (sources first, each node once) and return the variable holding it; a REDUCE gives its reduced value."""
    if e.op is Ops.REDUCE: return self.reduced[id(e)]
    if id(e) in self.names: return self.names[id(e)]
    srcs = [self.expr(s) for s in e.srcs]
    code = self._code(e, srcs)
    name, self.nx = f"x{self.nx}", self.nx + 1   # unique: a name may outlive a names dict (_fresh)
    self.emit(f"{name} = {code}")
    self.names[id(e)] = name
    return name

  def _code(self, e: Expr, s: list[str]) -> str:
    dt = TL_DTYPE[e.dtype.name]
    if e.op is Ops.LOAD:
      slot, st = e.arg
      addr, valid = self.load_index(st)
      mask = f"{self.inrange} & {valid}" if valid else self.inrange
      return f"tl.load(in{slot}_ptr + {addr}, mask={mask}, other=0)"
    if e.op is Ops.GATHER: return self.gather(e, s[0])
    if e.op is Ops.CONST: return f"tl.full([1], {_lit(e.arg)}, {dt})" if not self.is_reduce else f"tl.full([1, 1], {_lit(e.arg)}, {dt})"
    if e.op is Ops.VALID:
      addr, valid = self.load_index(e.arg)
      return f"(zero == 0) & {valid}" if valid else "(zero == 0)"
    if e.op is Ops.RAND:
      st, var = e.arg
      addr, valid = self.load_index(st)
      cnt = self.tmp()
      self.emit(f"{cnt} = ({addr}).to(tl.int64) + {self.k.var_names[var + 1]}")
      r = self.tmp()
      self.emit(f"{r}, _, _, _ = tl.philox({self.k.var_names[var]}, ({cnt} & 0xFFFFFFFF).to(tl.uint32), ({cnt} >> 32).to(tl.uint32), "
                f"({cnt} * 0).to(tl.uint32), ({cnt} * 0).to(tl.uint32))")
      return f"tl.uint_to_uniform_float({r})"
    if e.op is Ops.NEG: return f"(-{s[0]})" if not e.dtype.is_bool else f"({s[0]} == 0)"
    if e.op in (Ops.RECIP, Ops.FDIV):
      # correctly rounded, as torch: Triton's `/` on fp32 is div.full.f32 (2 ulp); fp16/bf16 divide in fp32 (24 bits
      # >= 2p + 2, so rounding twice is exact) and are cast back; fp64 `/` is div.rn.f64
      a, b = ("1.0", s[0]) if e.op is Ops.RECIP else (s[0], s[1])
      if e.dtype.name == "float64": return f"({a} / {b})"
      if e.op is Ops.RECIP: a = "tl.full([1], 1.0, tl.float32)" if not self.is_reduce else "tl.full([1, 1], 1.0, tl.float32)"
      code = f"tl.math.div_rn({a}.to(tl.float32), {b}.to(tl.float32))"
      return code if e.dtype.name == "float32" else f"{code}.to({dt})"
    if e.op in ACCURATE: return self._accurate(e, s[0])
    if e.op in _UNARY:
      if e.dtype.name in ("float16", "bfloat16"): return f"{_UNARY[e.op]}({s[0]}.to(tl.float32)).to({dt})"
      return f"{_UNARY[e.op]}({s[0]})"
    if e.op is Ops.CAST: return self.cast(s[0], e.srcs[0].dtype, e.dtype)
    if e.op is Ops.BITCAST: return f"{s[0]}.to({dt}, bitcast=True)"
    if e.op is Ops.MAX:
      if e.dtype.is_bool: return f"({s[0]} | {s[1]})"
      if e.dtype.is_float: return f"tl.maximum({s[0]}, {s[1]}, propagate_nan=tl.PropagateNan.ALL)"
      return f"tl.maximum({s[0]}, {s[1]})"
    if e.op in (Ops.ADD, Ops.MUL) and e.dtype.is_bool: return f"({s[0]} {'|' if e.op is Ops.ADD else '&'} {s[1]})"
    if e.op in _INFIX:
      code = f"({s[0]} {_INFIX[e.op]} {s[1]})"
      # keep narrow ints narrow (triton promotes int8 + int8 like C does)
      # and half floats half: triton computes fp16/bf16 `%` (and `/`) in fp32; + * < == keep them
      if e.dtype.name in ("float16", "bfloat16") and e.op is Ops.MOD: return f"{code}.to({dt})"
      return code if e.dtype.is_float or e.dtype.is_bool or e.op in (Ops.CMPLT, Ops.CMPEQ) else f"{code}.to({dt})"
    if e.op is Ops.WHERE: return f"tl.where({s[0]}, {s[1]}, {s[2]})"
    if e.op is Ops.CHECK: return self.check(e, s[0])
    raise NotImplementedError(f"triton renderer: {e.op}")

  def _accurate(self, e: Expr, x: str) -> str:
    """TANH, EXPM1, LOG1P, ERF. cuda: libdevice (__nv_tanhf, ...: <= 2 ulp), fp16/bf16 through fp32. The interpreter
    cannot call libdevice: float64 formulas (interp_formula), rounded once to the dtype; ERF is tl.erf there (math.erf)."""
    dt = TL_DTYPE[e.dtype.name]
    if not self.interp:
      self.libdevice = True
      if e.dtype.name in ("float16", "bfloat16"): return f"libdevice.{ACCURATE[e.op]}({x}.to(tl.float32)).to({dt})"
      return f"libdevice.{ACCURATE[e.op]}({x})"
    x64 = self.tmp()
    # the interpreter converts bf16 <-> fp32 only (it holds bf16 as raw bits): bf16 goes through fp32 both ways
    via = ".to(tl.float32)" if e.dtype.name == "bfloat16" else ""
    self.emit(f"{x64} = {x}{via}.to(tl.float64)")
    for line in interp_formula(e.op, x64, self.tmp): self.emit(line)
    return f"{x64}_r{via}.to({dt})"


# ---- the accurate primitives on the interpreter

ACCURATE = {Ops.TANH: "tanh", Ops.EXPM1: "expm1", Ops.LOG1P: "log1p", Ops.ERF: "erf"}   # op -> libdevice function


def _expm1_lines(x: str, out: str, tmp) -> list[str]:
  """out = expm1(x) in x's (float64) precision, Kahan's way: u = exp(x); (u - 1) * x / log(u) cancels exp's rounding
  error (a few ulp), x itself where u rounds to 1 (so -0 stays -0), -1 where u - 1 is -1, inf where u is."""
  u, um = tmp(), tmp()
  return [f"{u} = tl.exp({x})", f"{um} = {u} - 1.0",
          f"{out} = tl.where({u} == 1.0, {x}, tl.where({um} == -1.0, -1.0, {um} * ({x} / tl.log({u}))))",
          f"{out} = tl.where({u} == float('inf'), {u}, {out})"]


def interp_formula(op: Ops, x: str, tmp) -> list[str]:
  """Lines computing `<x>_r` = op(x) for a float64 tensor x on Triton's interpreter (no libdevice there), each a few
  float64 ulp, so < 1 ulp once rounded to float32 or narrower. LOG1P: log(u) * x / (u - 1) with u = 1 + x (Goldberg),
  x where u rounds to 1, inf at inf. TANH: expm1(2x) / (expm1(2x) + 2) with x clamped to +-20 (tanh is +-1 in float64
  beyond 19.1), so no inf / inf; nan passes the clamp's comparisons unchanged. ERF: tl.erf (math.erf per element)."""
  r = f"{x}_r"
  if op is Ops.ERF: return [f"{r} = tl.erf({x})"]
  if op is Ops.EXPM1: return _expm1_lines(x, r, tmp)
  if op is Ops.LOG1P:
    u = tmp()
    return [f"{u} = {x} + 1.0", f"{r} = tl.where({u} == 1.0, {x}, tl.log({u}) * ({x} / ({u} - 1.0)))",
            f"{r} = tl.where({x} == float('inf'), {x}, {r})"]
  if op is Ops.TANH:
    c, t = tmp(), tmp()
    return [f"{c} = tl.where({x} > 20.0, 20.0, tl.where({x} < -20.0, -20.0, {x})) * 2.0", *_expm1_lines(c, t, tmp),
            f"{r} = {t} / ({t} + 2.0)"]
  raise NotImplementedError(f"triton renderer: no interpreter formula for {op}")


# ---- the renderer -> runtime contract

@dataclass(frozen=True)
class LaunchConfig:
  """One way to launch a program: its tl.constexpr block sizes, grid, warps and stages."""
  constexprs: dict
  grid: tuple
  num_warps: int = 4
  num_stages: int = 3


@dataclass(frozen=True)
class TritonProgram:
  """What the runtime needs to run a kernel: the source and its entry point, the launch
  signature, and the launch configs (configs[0] is the default; a cuda device may time
  the others on first use and keep the fastest)."""
  name: str
  source: str
  signature: dict
  configs: tuple[LaunchConfig, ...] = field(default_factory=tuple)
  zero_output: bool = False   # the launcher zeroes the output first (a scatter-add accumulates into it)


def next_pow2(n: int) -> int:
  """The smallest power of two >= n (1 for n <= 1)."""
  return 1 << max(0, (n - 1)).bit_length()


def _warps(elems: int) -> int:
  """Warps for a program whose tile has this many elements per row (or in all)."""
  return 4 if elems <= 2048 else 8 if elems <= 8192 else 16


def elementwise_configs(k: Kernel, interp: bool) -> tuple[LaunchConfig, ...]:
  """The launch config of an elementwise kernel: BLOCK a power of two from 16 to 1024 (interp: 65536),
  one program per block of the flat space."""
  n = math.prod(k.shape)
  block = max(16, min(next_pow2(max(n, 1)), 65536 if interp else 1024))
  return (LaunchConfig({"BLOCK": block}, (max(1, -(-n // block)),), num_warps=4),)


def reduce_configs(k: Kernel, interp: bool) -> tuple[LaunchConfig, ...]:
  """Persistent (is_persistent): BLOCK_R = next_pow2(reduced extent), whole rows in one tile;
  cuda: rows per program so the tile stays <= 8K elements, fewer while that leaves under ~2
  programs per SM. Looped: 4K-element chunks on cuda (one row per program). The interpreter
  pays per program and per op: tiles of up to 64K elements."""
  axes = k.reduce_axes
  n_red = math.prod(k.shape[d] for d in axes)
  n_out = math.prod(s for d, s in enumerate(k.shape) if d not in axes)
  rows = next_pow2(max(n_out, 1))
  if is_persistent(k): br = next_pow2(max(n_red, 1))
  else: br = 4096
  if interp: bo = max(1, min(rows, 65536 // br))
  else:
    bo = max(1, min(rows, 8192 // br))
    while bo > 1 and -(-n_out // bo) < 256: bo //= 2
  return (LaunchConfig({"BLOCK_O": bo, "BLOCK_R": br}, (max(1, -(-n_out // bo)),), num_warps=_warps(br if bo == 1 else bo * br)),)


def kernel_args(k: Kernel) -> list[str]:
  """The kernel function's arguments before the constexprs: out_ptr, the input pointers, err_ptr (the error buffer,
  when the kernel checks bounds or is guarded), the runtime vars."""
  return ["out_ptr"] + [f"in{i}_ptr" for i in range(1, len(k.buf_dtypes))] + (["err_ptr"] if k.uses_errors else []) + list(k.var_names)


def signature(k: Kernel) -> dict:
  """Triton signature for ASTSource compilation (pointers, runtime vars as i64), in kernel_args order."""
  sig = {"out_ptr": PTR_DTYPE[k.buf_dtypes[0].name]}
  for i, dt in enumerate(k.buf_dtypes[1:], 1): sig[f"in{i}_ptr"] = PTR_DTYPE[dt.name]
  if k.uses_errors: sig["err_ptr"] = "*i64"
  for v in k.var_names: sig[v] = "i64"
  return sig
