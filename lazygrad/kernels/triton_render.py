"""Kernel -> Triton source.

An elementwise kernel: each program owns BLOCK flat output indices; per-dim indices
come from div/mod of the flat index; every LOAD turns its ShapeTracker into pointer
offsets and a mask. A reduce kernel: each program owns BLOCK_O outputs (flat over the
kept dims) and loops over the reduced extent in chunks of BLOCK_R, accumulating a
[BLOCK_O, BLOCK_R] tile that is reduced once at the end (fp32 for fp16/bf16).

Only pointer arithmetic (no make_block_ptr), so the source is valid on Triton 3.6-3.9."""
from __future__ import annotations
from dataclasses import dataclass, field
import math
from lazygrad.ops import Ops
from lazygrad.ops.view import View, ShapeTracker
from lazygrad.kernels.ir import Kernel, Expr

TL_DTYPE = {"bool": "tl.int1", "uint8": "tl.uint8", "int8": "tl.int8", "int16": "tl.int16", "int32": "tl.int32",
            "int64": "tl.int64", "float16": "tl.float16", "bfloat16": "tl.bfloat16", "float32": "tl.float32", "float64": "tl.float64"}
PTR_DTYPE = {"bool": "*i1", "uint8": "*u8", "int8": "*i8", "int16": "*i16", "int32": "*i32", "int64": "*i64",
             "float16": "*fp16", "bfloat16": "*bf16", "float32": "*fp32", "float64": "*fp64"}
_UNARY = {Ops.EXP2: "tl.exp2", Ops.LOG2: "tl.log2", Ops.EXP: "tl.exp", Ops.LOG: "tl.log", Ops.SIN: "tl.sin", Ops.SQRT: "tl.sqrt"}
_INFIX = {Ops.ADD: "+", Ops.MUL: "*", Ops.CMPLT: "<", Ops.CMPEQ: "==", Ops.IDIV: "//", Ops.MOD: "%",
          Ops.AND: "&", Ops.OR: "|", Ops.XOR: "^"}


def _lit(v) -> str:
  if isinstance(v, bool): return "1" if v else "0"
  if isinstance(v, float) and not math.isfinite(v): return f'float("{v}")'
  return repr(v)


def _fold(a: str, op: str, b: str) -> str:
  return f"({a} {op} {b})"


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


def st_index(st: ShapeTracker, idx: list[str], tmp) -> tuple[str, str, list[str]]:
  """Address and validity through a stack of views; returns helper lines too."""
  lines = []
  addr, valid = view_index(st.views[-1], idx)
  conds = [valid] if valid else []
  for v in reversed(st.views[:-1]):
    flat = tmp()
    lines.append(f"{flat} = {addr}")
    inner_idx, rest = [], flat
    for d in reversed(range(len(v.shape))):
      if v.shape[d] == 1: inner_idx.append("0"); continue
      name = tmp()
      lines.append(f"{name} = ({rest}) % {v.shape[d]}" if d > 0 else f"{name} = {rest}")
      if d > 0:
        nxt = tmp(); lines.append(f"{nxt} = ({rest}) // {v.shape[d]}"); rest = nxt
      inner_idx.append(name)
    addr, valid = view_index(v, list(reversed(inner_idx)))
    if valid: conds.append(valid)
  return addr, " & ".join(c for c in conds if c), lines


class TritonRenderer:
  def __init__(self, k: Kernel):
    self.k = k
    self.lines: list[str] = []
    self.names: dict[int, str] = {}
    self.ntmp = 0
    self.is_reduce = bool(k.reduce_axes)
    self.index64 = max([math.prod(k.shape)] + [1]) >= 2 ** 31

  def tmp(self) -> str:
    self.ntmp += 1
    return f"t{self.ntmp}"

  def emit(self, line: str): self.lines.append("  " * self.indent + line)

  def render(self) -> str:
    k = self.k
    nin = len(k.buf_dtypes) - 1
    args = ["out_ptr"] + [f"in{i}_ptr" for i in range(1, nin + 1)] + list(k.var_names)
    self.indent = 1
    if self.is_reduce: self._render_reduce()
    else: self._render_elementwise()
    blocks = "BLOCK_O: tl.constexpr, BLOCK_R: tl.constexpr" if self.is_reduce else "BLOCK: tl.constexpr"
    head = [f"def {k.name}({', '.join(args + [blocks])}):"]
    return "import triton\nimport triton.language as tl\n\n\n" + "\n".join(head + self.lines) + "\n"

  # ---- index setup
  def _unravel(self, flat: str, dims: list[int]) -> dict[int, str]:
    idx, rest = {}, flat
    live = [d for d in dims if self.k.shape[d] != 1]
    for n, d in enumerate(reversed(live)):
      name = f"i{d}"
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
    self.emit(f"tl.store(out_ptr + gidx, {self.cast(val, k.body.dtype, k.buf_dtypes[0])}, mask=omask)")

  def _render_reduce(self):
    """A row kernel: each REDUCE (all over the same axes) is one loop over the reduced
    extent producing a [BLOCK_O, 1] value per row; the result is stored per row, or by a
    last loop over the reduced extent when the kernel's output is the full space."""
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
    for n, red in enumerate(reduces):
      self.reduced[id(red)] = self._reduce_loop(red, n, axes, i64)
    row_output = tuple(k.out_shape) != tuple(k.shape) or k.out_st is not None   # (reduced dims may all be size 1)
    if row_output:
      # every value left is per row: reduced dims index as 0 (their strides are 0)
      self.names, self.idx, self.inrange = {}, dict(self.row_idx), "omask"
      val = self.expr(k.body)
      if k.out_st is None: addr = "oidx + zero"
      else:   # a permuted per-row epilogue: each row's value lands through the output view
        addr = "zero + " + view_index(k.out_st.views[0], [self.row_idx.get(d, "0") for d in range(len(k.shape))])[0]
      self.emit(f"tl.store(out_ptr + {addr}, {self.cast(val, k.body.dtype, k.buf_dtypes[0])}, mask=omask)")
      return
    self._loop_over_reduced(axes, i64)
    val = self.expr(k.body)
    strides, acc = [0] * len(k.shape), 1
    for d in reversed(range(len(k.shape))): strides[d], acc = acc, acc * k.shape[d]
    # "ridx * 0" keeps the pointer [BLOCK_O, BLOCK_R] like the mask even when every reduced dim has size 1
    flat = " + ".join(["zero", "ridx * 0"] + [f"{self.idx[d]} * {strides[d]}" for d in range(len(k.shape)) if d in self.idx])
    self.emit(f"tl.store(out_ptr + {flat}, {self.cast(val, k.body.dtype, k.buf_dtypes[0])}, mask=omask & rmask)")
    self.indent -= 1

  def _loop_over_reduced(self, axes, i64):
    self.emit(f"for r0 in range(0, {self.n_red}, BLOCK_R):")
    self.indent += 1
    self.emit(f"ridx = (r0 + tl.arange(0, BLOCK_R)){i64}[None, :]")
    self.emit(f"rmask = ridx < {self.n_red}")
    self.names = {}   # values inside a loop are per-chunk tiles: nothing carries over
    self.idx = dict(self.row_idx)
    self.idx.update(self._unravel("ridx", list(axes)))
    self.inrange = "omask & rmask"

  def _reduce_loop(self, red: Expr, n: int, axes, i64) -> str:
    op, dt = red.arg[0], red.dtype
    acc_dt = "tl.float32" if dt.name in ("float16", "bfloat16") else "tl.int8" if dt.is_bool else TL_DTYPE[dt.name]
    ident = ("0" if op is Ops.ADD else ("float('-inf')" if dt.is_float else
             ("0" if dt.is_bool else str(-(2 ** (8 * dt.itemsize - 1)) if dt.kind == 'i' else 0))))
    acc = f"acc{n}"
    self.emit(f"{acc} = tl.full([BLOCK_O, BLOCK_R], {ident}, {acc_dt})")
    self._loop_over_reduced(axes, i64)
    val = self.cast(self.expr(red.srcs[0]), red.srcs[0].dtype, None, acc_dt)
    self.emit(f"v = tl.where(omask & rmask, {val}, {ident})")
    if op is Ops.ADD: self.emit(f"{acc} = {acc} + v")
    elif dt.is_float: self.emit(f"{acc} = tl.maximum({acc}, v, propagate_nan=tl.PropagateNan.ALL)")
    else: self.emit(f"{acc} = tl.maximum({acc}, v)")
    self.indent -= 1
    out = f"red{n}"
    if op is Ops.ADD: self.emit(f"{out} = tl.sum({acc}, axis=1)[:, None]")
    else:
      self.emit(f"{out} = tl.max({acc}, axis=1)[:, None]")
      if dt.is_float:   # tl.max may drop NaN: put it back
        self.emit(f"{out} = tl.where(tl.sum(({acc} != {acc}).to(tl.int32), axis=1)[:, None] > 0, float('nan'), {out})")
    final = self.cast(out, None, dt, None) if acc_dt != TL_DTYPE[dt.name] else out
    if final != out: self.emit(f"{out} = {final}")
    return out

  # ---- expressions
  def cast(self, val: str, src_dt, out_dt, out_tl: str | None = None) -> str:
    tl_out = out_tl or TL_DTYPE[out_dt.name]
    if out_dt is not None and out_dt.is_bool: return f"({val} != 0)"
    if src_dt is not None and out_dt is not None and src_dt == out_dt: return val
    return f"({val}).to({tl_out})"

  def load_index(self, st: ShapeTracker) -> tuple[str, str]:
    idx = [self.idx.get(d, "0") if self.k.shape[d] != 1 else "0" for d in range(len(self.k.shape))]
    addr, valid, lines = st_index(st, idx, self.tmp)
    for ln in lines: self.emit(ln)
    return f"zero + {addr}", valid

  def expr(self, e: Expr) -> str:
    if e.op is Ops.REDUCE: return self.reduced[id(e)]
    if id(e) in self.names: return self.names[id(e)]
    srcs = [self.expr(s) for s in e.srcs]
    code = self._code(e, srcs)
    name = f"x{len(self.names)}"
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
    if e.op is Ops.RECIP: return f"(1.0 / {s[0]})"
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
      return code if e.dtype.is_float or e.dtype.is_bool or e.op in (Ops.CMPLT, Ops.CMPEQ) else f"{code}.to({dt})"
    if e.op is Ops.WHERE: return f"tl.where({s[0]}, {s[1]}, {s[2]})"
    raise NotImplementedError(f"triton renderer: {e.op}")


def render_triton(k: Kernel) -> str:
  from lazygrad.kernels.triton_matmul import render_matmul, template_ok
  if template_ok(k): return render_matmul(k)   # tiled tl.dot with prologue/epilogue (triton_matmul.py)
  return TritonRenderer(k).render()


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


def next_pow2(n: int) -> int: return 1 << max(0, (n - 1)).bit_length()


def elementwise_configs(k: Kernel, interp: bool) -> tuple[LaunchConfig, ...]:
  n = math.prod(k.shape)
  block = max(16, min(next_pow2(max(n, 1)), 65536 if interp else 1024))
  return (LaunchConfig({"BLOCK": block}, (max(1, -(-n // block)),), num_warps=4),)


def reduce_configs(k: Kernel, interp: bool) -> tuple[LaunchConfig, ...]:
  axes = k.reduce_axes
  n_red = math.prod(k.shape[d] for d in axes)
  n_out = math.prod(s for d, s in enumerate(k.shape) if d not in axes)
  br = min(next_pow2(max(n_red, 1)), 4096 if interp else 1024)
  bo = max(1, min(next_pow2(max(n_out, 1)), (65536 if interp else 4096) // br))
  return (LaunchConfig({"BLOCK_O": bo, "BLOCK_R": br}, (max(1, -(-n_out // bo)),), num_warps=4),)


def triton_program(k: Kernel, interp: bool = False) -> TritonProgram:
  """Render a kernel and choose how to launch it (interp: few, large programs)."""
  from lazygrad.kernels.triton_matmul import matmul_program, template_ok
  if template_ok(k): return matmul_program(k, interp)
  configs = reduce_configs(k, interp) if k.reduce_axes else elementwise_configs(k, interp)
  return TritonProgram(k.name, render_triton(k), signature(k), configs)


def signature(k: Kernel) -> dict:
  """Triton signature for ASTSource compilation (pointers, runtime vars as i64)."""
  sig = {"out_ptr": PTR_DTYPE[k.buf_dtypes[0].name]}
  for i, dt in enumerate(k.buf_dtypes[1:], 1): sig[f"in{i}_ptr"] = PTR_DTYPE[dt.name]
  for v in k.var_names: sig[v] = "i64"
  return sig
