"""Kernel -> numpy source. One line per Expr node; the source is deterministic so the
compile cache (keyed by source) hits across realizes."""
from __future__ import annotations
import numpy as np
from lazygrad.ops import Ops
from lazygrad.kernels.ir import Kernel, Expr
from lazygrad.kernels import numpy_lib

_UNARY = {Ops.NEG: "np.negative", Ops.EXP2: "np.exp2", Ops.LOG2: "np.log2", Ops.EXP: "np.exp", Ops.LOG: "np.log",
          Ops.SIN: "np.sin", Ops.SQRT: "np.sqrt", Ops.RECIP: "np.reciprocal"}
_BINARY = {Ops.ADD: "np.add", Ops.MUL: "np.multiply", Ops.MAX: "np.maximum", Ops.CMPLT: "np.less",
           Ops.CMPEQ: "np.equal", Ops.IDIV: "idiv", Ops.MOD: "np.fmod", Ops.AND: "np.bitwise_and",
           Ops.OR: "np.bitwise_or", Ops.XOR: "np.bitwise_xor"}


def _lit(v) -> str:
  return f"float('{v}')" if isinstance(v, float) and not np.isfinite(v) else repr(v)


def _dt(dtype) -> str: return f"np.{dtype.np.name}" if dtype.name != 'bfloat16' else "BF16"


def render_numpy(k: Kernel) -> tuple[str, dict]:
  consts: dict = {}
  names: dict[int, str] = {}
  lines = [f"def {k.name}(bufs, vars):"]
  lines.append(f"  {', '.join(f'b{i}' for i in range(len(k.buf_dtypes)))}, = bufs")
  nd = len(k.shape)

  def const_ref(value) -> str:
    name = f"C{len(consts)}"
    consts[name] = value
    return name

  def emit(e: Expr, code: str, comment: str = ""):
    names[id(e)] = f"x{len(names)}"
    lines.append(f"  {names[id(e)]} = {code}" + (f"  # {comment}" if comment else ""))

  for e in k.body.walk():
    if id(e) in names: continue
    src = [names.get(id(s)) for s in e.srcs]
    if e.op is Ops.REDUCE and e.arg[0] is Ops.ADD and e.srcs[0].op is Ops.MUL and id(e.srcs[0]) not in _used_elsewhere(k.body, e.srcs[0]):
      a, b = (names[id(s)] for s in e.srcs[0].srcs)
      emit(e, f"contract({a}, {b}, {e.arg[1]}, {k.shape}, {_dt(e.dtype)})")
      continue
    if e.op is Ops.MUL and _only_feeds_contract(k.body, e): continue
    if e.op is Ops.LOAD:
      slot, st = e.arg
      emit(e, f"load(b{slot}, {const_ref(st)})", f"{st.views[-1].strides if len(st.views) == 1 else 'multi-view'}")
    elif e.op is Ops.CONST: emit(e, f"const({_lit(e.arg)}, {_dt(e.dtype)}, {nd})")
    elif e.op is Ops.VALID: emit(e, f"valid({const_ref(e.arg)})")
    elif e.op is Ops.RAND: emit(e, f"rand({const_ref(e.arg[0])}, vars[{e.arg[1]}], vars[{e.arg[1] + 1}])")
    elif e.op in _UNARY: emit(e, f"{_UNARY[e.op]}({src[0]})")
    elif e.op is Ops.CAST: emit(e, f"{src[0]}.astype({_dt(e.dtype)})")
    elif e.op is Ops.BITCAST: emit(e, f"{src[0]}.view({_dt(e.dtype)})")
    elif e.op in _BINARY: emit(e, f"{_BINARY[e.op]}({src[0]}, {src[1]})")
    elif e.op is Ops.WHERE: emit(e, f"np.where({src[0]}, {src[1]}, {src[2]})")
    elif e.op is Ops.REDUCE:
      fn = "rsum" if e.arg[0] is Ops.ADD else "rmax"
      emit(e, f"{fn}({src[0]}, {e.arg[1]}, {k.shape}, {_dt(e.dtype)})")
    else: raise NotImplementedError(f"numpy renderer: {e.op}")
  lines.append(f"  store(b0, {names[id(k.body)]}, {k.out_shape})")
  return "\n".join(lines) + "\n", consts


def _only_feeds_contract(body: Expr, mul: Expr) -> bool:
  users = [e for e in body.walk() if any(s is mul for s in e.srcs)]
  return len(users) == 1 and users[0].op is Ops.REDUCE and users[0].arg[0] is Ops.ADD and mul is not body


def _used_elsewhere(body: Expr, node: Expr) -> set:
  users = [e for e in body.walk() if any(s is node for s in e.srcs)]
  return set() if len(users) == 1 else {id(node)}


_cache: dict[str, object] = {}

def compile_numpy(k: Kernel):
  src, consts = render_numpy(k)
  k.source = src
  key = src + repr(sorted((n, repr(v)) for n, v in consts.items()))
  if key not in _cache:
    glb = {"np": np, **{n: getattr(numpy_lib, n) for n in ("load", "valid", "const", "rand", "rsum", "rmax", "contract", "idiv")}}
    if any(d.name == 'bfloat16' for d in k.buf_dtypes) or 'BF16' in src:
      import ml_dtypes
      glb["BF16"] = np.dtype(ml_dtypes.bfloat16)
    glb.update(consts)
    glb["store"] = numpy_lib.store
    exec(compile(src, f"<lazygrad {k.name}>", "exec"), glb)
    _cache[key] = glb[k.name]
  return _cache[key]
