"""Kernel -> numpy source and a NumpyProgram (the source exec'd into a function calling
numpy/lib.py). One line per Expr node."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from lazygrad.kernels.common import BINARY, OPS, UNARY
from lazygrad.kernels.ir import Expr, Kernel, split_dims
from lazygrad.kernels.numpy import lib
from lazygrad.kernels.numpy.attention import run_attention
from lazygrad.kernels.numpy.gather import gather, run_scatter_add
from lazygrad.kernels.numpy.pool import POOL_MIN_BYTES
from lazygrad.kernels.numpy import elementwise
from lazygrad.kernels.numpy.elementwise import Shape, Temps, broadcast, contract_shape, load_shape, rewrites, zero_const
from lazygrad.ops import Ops

_UNARY = {op: OPS[op].numpy for op in UNARY}
_BINARY = {op: OPS[op].numpy for op in BINARY}


def _lit(v) -> str:
  return f"float('{v}')" if isinstance(v, float) and not np.isfinite(v) else repr(v)


def _dt(dtype) -> str: return f"np.{dtype.np.name}" if dtype.name != 'bfloat16' else "BF16"


def render_numpy(k: Kernel) -> tuple[str, dict]:
  """The numpy source of a kernel (a function `name(bufs, vars)`) and the objects it refers to by name (C0, C1, ...),
  which compile_numpy puts in the function's globals."""
  consts: dict = {}
  names: dict[int, str] = {}
  lines = [f"def {k.name}(bufs, vars):"]
  lines.append(f"  {', '.join([f'b{i}' for i in range(len(k.buf_dtypes))] + (['err'] if k.uses_errors else []))}, = bufs")
  if k.guard: lines.append("  if err[0]: return  # a bounds check of this schedule failed: write nothing (the realize raises)")
  nd = len(k.shape)
  order = k.body.walk()
  users: dict[int, int] = {}
  for e in order:
    for s_ in e.srcs: users[id(s_)] = users.get(id(s_), 0) + 1
  cats = _find_cats(order, users)
  skipped = {id(m) for members in cats.values() for m in members[1]}
  plans = _contractions(k, order, users)
  for p in plans.values(): skipped |= p.between
  # a cat along a reduced dim read only by a contraction is never concatenated: contract_cat
  # contracts piece by piece and sums (conv forward: the im2col matrix is never built whole)
  cat_operand = {}
  for rid, p in plans.items():
    ops_ = (p.a, p.b)
    i = next((i for i, s_ in enumerate(ops_) if id(s_) in cats and users[id(s_)] == 1 and ops_[1 - i] is not s_), None)
    if i is not None and cats[id(ops_[i])][0] in p.dims[3] + p.presum[i]: cat_operand[rid] = i; skipped.add(id(ops_[i]))

  def const_ref(value) -> str:
    name = f"C{len(consts)}"
    consts[name] = value
    return name

  def emit(e: Expr, code: str, comment: str = "", shape: Shape = None, owned: bool = False):
    names[id(e)] = f"x{len(names)}"
    lines.append(f"  {names[id(e)]} = {code}" + (f"  # {comment}" if comment else ""))
    temps.note(e, shape, owned)

  fast = elementwise.FAST
  rw = rewrites(order, users) if fast else {}
  reads = _reads(order, cats, plans, cat_operand, rw)
  live = _live(k.body, reads)
  temps = Temps(_count_reads(live, reads) if fast and 0 not in k.shape else {})   # an empty space: no out= (nothing to gain)
  for e in order:
    if id(e) in names or id(e) in skipped or id(e) not in live: continue
    src = [names.get(id(s)) for s in e.srcs]
    if id(e) in cats:
      dim, parts = cats[id(e)][0], cats[id(e)][2]
      refs = ", ".join(f"(b{slot}, {const_ref(st)})" for slot, st in parts)
      call, what = (f"cat_loads([{refs}], {dim}", "disjoint pieces along one dim") if dim is not None else \
                   (f"sum_loads([{refs}]", "overlapping padded pieces, added in place")
      if e is k.body and tuple(k.out_shape) == tuple(k.shape) and e.dtype == k.buf_dtypes[0]:   # written straight into the output
        lines.append(f"  {call}, b0.reshape({tuple(k.shape)}))  # {what}, into the output")
        return "\n".join(lines) + "\n", consts
      emit(e, f"{call})", what)
      continue
    if id(e) in plans:
      p = plans[id(e)]
      extra = f", {p.presum}, {p.scale}" if p.presum != ((), ()) or p.scale != 1 else ""
      if id(e) in cat_operand:
        i = cat_operand[id(e)]
        cat, other = (p.a, p.b)[i], (p.a, p.b)[1 - i]
        dim, parts = cats[id(cat)][0], cats[id(cat)][2]
        refs = ", ".join(f"(b{slot}, {const_ref(st)})" for slot, st in parts)
        emit(e, f"contract_cat([{refs}], {dim}, {names[id(other)]}, {i == 0}, {p.dims}, {k.shape}, {_dt(e.dtype)}{extra})",
             f"{p.what}, over disjoint pieces: one per piece, no concatenate")
      else:
        emit(e, f"contract({names[id(p.a)]}, {names[id(p.b)]}, {p.dims}, {k.shape}, {_dt(e.dtype)}{extra})", p.what,
             contract_shape(temps.shape(p.a), temps.shape(p.b), p.dims, nd), owned=True)
      continue
    if e.op is Ops.LOAD:
      slot, st = e.arg
      emit(e, f"load(b{slot}, {const_ref(st)})", f"{st.views[-1].strides if len(st.views) == 1 else 'multi-view'}",
           load_shape(st, nd))
    elif e.op is Ops.CONST: emit(e, f"{const_ref(np.full((1,) * nd, e.arg, dtype=e.dtype.np))}", f"const {_lit(e.arg)}", (1,) * nd)
    elif e.op is Ops.VALID: emit(e, f"valid({const_ref(e.arg)})")
    elif e.op is Ops.RAND: emit(e, f"rand({const_ref(e.arg[0])}, vars[{e.arg[1]}], vars[{e.arg[1] + 1}])")
    elif id(e) in rw or e.op in _UNARY or e.op in _BINARY or e.op is Ops.WHERE:
      fn, ops_ = rw[id(e)] if id(e) in rw else (_UNARY.get(e.op) or _BINARY.get(e.op) or ("where" if fast else "np.where"), e.srcs)
      last = fast and e is k.body and k.out_st is None and len(k.out_shape) == nd > 0 and e.dtype == k.buf_dtypes[0] and 0 not in k.shape
      code, into_output = _elementwise(e, fn, ops_, names, temps, tuple(k.out_shape) if last else None)
      emit(e, code, "", broadcast([temps.shape(s) for s in ops_]), owned=True)
      if into_output: return "\n".join(lines + _release(temps, names)) + "\n", consts
    elif e.op is Ops.CAST:
      shape = temps.shape(e.srcs[0])
      if fast and e is k.body and k.out_st is None and shape == tuple(k.out_shape) and 0 not in shape and e.dtype == k.buf_dtypes[0]:
        lines.append(f"  cast({src[0]}, b0.reshape({shape}))  # into the output")
        return "\n".join(lines + _release(temps, names)) + "\n", consts
      into = _scratch(e, shape)   # astype's conversion into a pooled array when big
      emit(e, f"cast({src[0]}{into.replace(', out=', ', ')})" if into else f"{src[0]}.astype({_dt(e.dtype)})", "", shape, owned=True)
    elif e.op is Ops.BITCAST: emit(e, f"{src[0]}.view({_dt(e.dtype)})", "", temps.shape(e.srcs[0]))
    elif e.op is Ops.GATHER:
      slot, st, stride, n = e.arg
      emit(e, f"gather(b{slot}, {const_ref(st)}, {stride}, {n}, {src[0]})", "a load at computed addresses")
    elif e.op is Ops.CHECK:
      lo, hi, site = e.arg
      emit(e, f"check({src[0]}, {lo}, {hi}, err, vars[{k.var_names.index('ebase')}] + {site})", "bounds check")
    elif e.op is Ops.REDUCE:
      fn = "rsum" if e.arg[0] is Ops.ADD else "rmax"
      x = temps.shape(e.srcs[0])
      emit(e, f"{fn}({src[0]}, {e.arg[1]}, {k.shape}, {_dt(e.dtype)})", "",
           None if x is None else tuple(1 if d in e.arg[1] else s for d, s in enumerate(x)), owned=fn == "rsum")
    else: raise NotImplementedError(f"numpy renderer: {e.op}")
  if k.out_st is None: lines.append(f"  store(b0, {names[id(k.body)]}, {k.out_shape})")
  else: lines.append(f"  store_view(b0, {names[id(k.body)]}, {const_ref(k.out_st)})")
  return "\n".join(lines + _release(temps, names)) + "\n", consts


def _release(temps: Temps, names) -> list[str]:
  """The line handing the kernel's temporaries back to the scratch pool (after the store: all dead then)."""
  made = sorted({names[i] for i in temps.made}, key=lambda n: int(n[1:]))
  return [f"  release({', '.join(made)})"] if made and elementwise.FAST else []


def _elementwise(e: Expr, fn: str, ops_, names, temps: Temps, out_shape) -> tuple[str, bool]:
  """The call computing elementwise node e as fn(*ops_) (a numpy ufunc, a lib.py helper or "where"), writing into an
  operand's temporary when one is free (elementwise.Temps), or straight into the output when e is the body (out_shape:
  the output's shape, else None) and a ufunc of that shape; and whether it did the latter (then no store follows)."""
  args = ", ".join(names[id(s)] for s in ops_)
  shape = broadcast([temps.shape(s) for s in ops_])
  if fn == "where":
    c, a, b = ops_
    if zero_const(b) or zero_const(a):
      keep, x = (True, a) if zero_const(b) else (False, b)
      t = temps.reusable(e, (x,), shape)
      return f"select_zero({names[id(c)]}, {names[id(x)]}, {keep}{f', out={names[id(t)]}' if t else _scratch(e, shape)})", False
    t = temps.reusable(e, (a,), shape) if a.dtype == b.dtype else None   # a's array only (select reads b after its first pass)
    return f"select({args}{f', out={names[id(t)]}' if t else _scratch(e, shape)})", False
  if not fn.startswith("np."): return f"{fn}({args})", False   # lib helpers (tanh, idiv, ...) return a fresh array
  # numpy's result dtype is the operands' (no promotion to undo; an int operand of a float-only ufunc would give float64)
  same = all(s.dtype == e.dtype for s in ops_) and (e.dtype.is_float or fn not in _FLOAT_ONLY)
  if out_shape is not None and shape == out_shape and (same or fn in _COMPARISONS):   # numpy handles an input aliasing b0
    return f"{fn}({args}, out=b0.reshape({shape}))", True
  t = temps.reusable(e, ops_, shape) if same else None
  if t is not None: return f"{fn}({args}, out={names[id(t)]})", False
  return f"{fn}({args}{_scratch(e, shape) if same or fn in _COMPARISONS else ''})", False


def _scratch(e: Expr, shape) -> str:
  """`, out=scratch(...)` for a new temporary big enough to page-fault when fresh (pool.py), else ''."""
  if not elementwise.FAST or shape is None or math.prod(shape) * e.dtype.itemsize < POOL_MIN_BYTES: return ""
  return f", out=scratch({shape}, {_dt(e.dtype)})"


_COMPARISONS = ("np.less", "np.equal", "np.less_equal")   # bool results, as the node's dtype
_FLOAT_ONLY = ("np.exp", "np.exp2", "np.log", "np.log2", "np.sin", "np.cos", "np.sqrt", "np.divide")


def _reads(order, cats, plans, cat_operand, rw) -> dict:
  """id(node) -> the nodes its line reads: a peephole's operands, a contraction's two operands, none for a cat."""
  reads = {}
  for e in order:
    if id(e) in cats: reads[id(e)] = ()
    elif id(e) in plans:
      p = plans[id(e)]
      reads[id(e)] = ((p.a, p.b)[1 - cat_operand[id(e)]],) if id(e) in cat_operand else (p.a, p.b)
    else: reads[id(e)] = rw[id(e)][1] if id(e) in rw else e.srcs
  return reads


def _live(body: Expr, reads) -> set:
  """The ids of the nodes the body's lines read, transitively (what a peephole or a contraction bypasses is not)."""
  live, stack = set(), [body]
  while stack:
    e = stack.pop()
    if id(e) in live: continue
    live.add(id(e))
    stack.extend(reads[id(e)])
  return live


def _count_reads(live, reads) -> dict:
  counts: dict[int, int] = {}
  for i in live:
    for s in reads[i]: counts[id(s)] = counts.get(id(s), 0) + 1
  return counts


class _Plan(NamedTuple):
  """How a numpy kernel renders one REDUCE(ADD) of a product: contract(a, b, dims, ...)."""
  a: Expr
  b: Expr
  dims: tuple          # (batch, m, n, k) dims of the iteration space
  presum: tuple        # reduced dims only a (only b) varies along: summed out of it first (fallback only)
  scale: int           # product of the reduced sizes neither operand varies along (fallback only)
  between: set         # ids of the nodes between the REDUCE and its operands (MUL, CAST) read by nothing else
  what: str            # a comment for the source


def _contractions(k: Kernel, order, users) -> dict:
  """id(REDUCE) -> _Plan for every sum of a product the kernel computes as a matmul. The
  kernel's IR Contraction says which dims are batch / m / n / k; a REDUCE(ADD, MUL) it has
  none for (a reduced dim only one factor varies along, the sum of a product that is also
  read elsewhere in a kernel that stores per element) goes through _fallback_plan."""
  plans = {}
  c = k.contraction
  if c is not None:
    between, x = set(), c.acc.srcs[0]   # MUL(a, b), or a float CAST of it
    while x is not c.a and x is not c.b and users[id(x)] == 1: between.add(id(x)); x = x.srcs[0]
    plans[id(c.acc)] = _Plan(c.a, c.b, (c.batch, c.m, c.n, c.k), ((), ()), 1, between, "matmul from the IR's contraction")
  for e in order:
    if e.op is Ops.REDUCE and e.arg[0] is Ops.ADD and id(e) not in plans and e.srcs[0].op is Ops.MUL and users[id(e.srcs[0])] == 1:
      plans[id(e)] = _fallback_plan(e, k.shape)
  return plans


def _fallback_plan(e: Expr, shape) -> _Plan:
  """The plan for a sum(a * b) the IR records no Contraction for, from the same dim split
  find_contraction reads (ir.split_dims): a reduced dim only one factor varies along is
  summed out of it first, a reduced dim neither varies along multiplies the result by its size."""
  a, b = e.srcs[0].srcs
  s = split_dims(a, b, shape, e.arg[1])
  scale = math.prod(shape[d] for d in s.neither)
  return _Plan(a, b, (s.batch, s.m, s.n, s.k), (s.only_a, s.only_b), scale, {id(e.srcs[0])},
               "matmul, dims classified by the renderer (no IR contraction)")


def _find_cats(order, users) -> dict:
  """ADD trees of LOADs whose (outermost views') masks split one dim into disjoint pieces
  covering it (what cat/stack build from PAD + ADD): rendered as one concatenate of
  the unpadded pieces instead of a sum of zero-padded copies (or contracted piece by piece);
  of single-view LOADs that overlap: summed in place (sum_loads)."""
  cats = {}
  parents = {}
  for e in order:
    for s_ in e.srcs: parents.setdefault(id(s_), []).append(e)
  for e in order:
    if e.op is not Ops.ADD or any(p.op is Ops.ADD and id(e) in {id(x) for x in p.srcs} and users[id(e)] == 1 for p in parents.get(id(e), [])):
      continue
    leaves, inner, stack = [], [], [e]
    while stack:
      x = stack.pop()
      if x.op is Ops.ADD and (x is e or users[id(x)] == 1): inner.append(x); stack.extend(x.srcs)
      else: leaves.append(x)
    if len(leaves) < 2 or any(l.op is not Ops.LOAD or users[id(l)] != 1 for l in leaves): continue
    # the outermost view's masks (in the iteration space) say where each piece is; a piece read through several
    # views (the q, k, v gradients transposed back into one qkv gradient) is loaded unpadded, then placed
    found = _split_dim([l.arg[1].views[-1] for l in leaves])
    single = all(len(l.arg[1].views) == 1 for l in leaves)
    if found is None:   # overlapping pieces (the gradient of conv windows): summed in place, no padded copies
      if single and any(l.arg[1].views[0].mask is not None for l in leaves):
        cats[id(e)] = (None, [x for x in inner if x is not e] + leaves, [(l.arg[0], l.arg[1]) for l in leaves])
      continue
    dim, ranges = found
    parts = sorted(((r, l) for r, l in zip(ranges, leaves)), key=lambda t: t[0][0])
    pieces = [(l.arg[0], l.arg[1].shrink(tuple(r if d == dim else (0, s) for d, s in enumerate(l.arg[1].shape)))) for r, l in parts]
    cats[id(e)] = (dim, [x for x in inner if x is not e] + leaves, pieces)
  return cats


def _split_dim(views):
  shape = views[0].shape
  for dim, n in enumerate(shape):
    ranges = []
    for v in views:
      m = v.mask[dim] if v.mask else (0, n)
      ranges.append(m)
    srt = sorted(ranges)
    if srt[0][0] != 0 or srt[-1][1] != n or any(a[1] != b[0] for a, b in itertools.pairwise(srt)) or any(lo >= hi for lo, hi in srt): continue
    return dim, ranges
  return None


@dataclass(frozen=True)
class NumpyProgram:
  """A rendered numpy kernel: `fn(bufs, vars)` is `source` executed with the lib.py helpers
  and the `constants` it names (ShapeTrackers and the like, C0, C1, ...)."""
  name: str
  source: str
  fn: Callable
  constants: dict


_HELPERS = ("load", "valid", "const", "rand", "rsum", "rmax", "contract", "contract_cat", "idiv", "cat_loads", "sum_loads", "store", "store_view",
            "tanh", "expm1", "log1p", "erf", "check", "select", "select_zero", "scratch", "release", "cast")


def compile_numpy(k: Kernel) -> NumpyProgram:
  """Render a kernel and exec its source into a function (the cpu device caches it by k.key); a template op
  (ATTENTION, SCATTER_ADD) runs its numpy implementation (kernels/numpy/attention.py, gather.py)."""
  if k.body.op is Ops.ATTENTION:
    return NumpyProgram(k.name, f"# run_attention({k.body.arg}, out_shape={k.out_shape})",
                        lambda bufs, vars_: run_attention(k.body, k.out_shape, bufs, vars_), {})
  if k.body.op is Ops.SCATTER_ADD:
    return NumpyProgram(k.name, f"# run_scatter_add({k.body.arg}, out_shape={k.out_shape})",
                        lambda bufs, vars_: run_scatter_add(k.body, k.out_shape, bufs, vars_), {})
  src, consts = render_numpy(k)
  glb = {"np": np, "gather": gather, **{n: getattr(lib, n) for n in _HELPERS}}
  if any(d.name == 'bfloat16' for d in k.buf_dtypes) or 'BF16' in src:
    import ml_dtypes
    glb["BF16"] = np.dtype(ml_dtypes.bfloat16)
  glb.update(consts)
  exec(compile(src, f"<lazygrad {k.name}>", "exec"), glb)  # noqa: S102 (the kernel source this module rendered)
  return NumpyProgram(k.name, src, glb[k.name], consts)
