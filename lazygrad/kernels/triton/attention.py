"""The flash-attention template: Triton sources for the three ATTENTION kernels (node layouts: ops/attention.py).

forward   one program per (block of BLOCK_M query rows, batch index): online softmax over key blocks of BLOCK_N
          (running max and rescaled sum, base 2 with scale * log2 e folded into the scores), q k^T and P v on
          tl.dot with fp32 accumulators; causal programs stop at their diagonal block (the loop bound, not a mask)
          and run heaviest first; stores O and the row log-sum-exp.
grad_kv   one program per (block of keys, batch index): loops over query blocks (causal: from the diagonal on),
          recomputes P^T from the saved log-sum-exp, accumulates dV += P^T dO and dK += dS^T q.
grad_q    one program per (block of queries, batch index): loops over key blocks, dQ += dS k.
Neither backward kernel stores anything L x S; D = rowsum(dO * O) comes in as a buffer (a small reduce kernel).
Each loop runs in two stages: whole blocks inside the sequence and below the diagonal without bounds or causal
masks (only a user mask), then the diagonal blocks and the block running past the sequence with them.

Dropout: the keep mask of score (b, i, j) is Philox(seed, counter = its flat index in (*B, L, S) + base) >= p, the
numbers Tensor.rand gives (render.py's RAND), recomputed identically by the three kernels from the same runtime vars.
Head dims are padded to a power of two >= 16 with masked loads; L and S need not be multiples of the blocks; the batch
dims are one grid axis whose index is unravelled into each source's strides (any strided view, no copy). A row the
mask hides everywhere gives O = 0 and zero gradients (l = 0, log-sum-exp -inf, guarded). Pointer arithmetic only."""
from __future__ import annotations
import math
from lazygrad import backends
from lazygrad.kernels.ir import Expr, Kernel
from lazygrad.kernels.triton.render import TL_DTYPE, LaunchConfig, TritonProgram, next_pow2, signature
from lazygrad.ops import Ops

LOG2E = 1.4426950408889634
INTERP_BLOCK = 64   # the interpreter pays per program and per loop step: few, large tiles
# (BLOCK_M, BLOCK_N, warps, stages) candidates on cuda, per kind; the device times them on first use
CUDA_TILES = {
  "forward": ((128, 64, 4, 3), (128, 128, 8, 3), (64, 64, 4, 3), (128, 32, 4, 4)),
  "grad_kv": ((32, 128, 4, 3), (64, 64, 4, 2), (32, 64, 4, 3), (64, 128, 8, 2)),
  "grad_q": ((128, 32, 4, 3), (64, 64, 4, 2), (64, 32, 4, 3), (128, 64, 8, 2)),
}


def attention_ok(k: Kernel) -> bool:
  """Whether a kernel is an ATTENTION template kernel (kernels.triton.triton_program renders it here)."""
  return k.body.op is Ops.ATTENTION


class _Src:
  """One source of the op as the template reads it: its pointer name, offset, batch strides and the strides of
  its last two dims (a single unpadded view: the front end makes sure, tensor_attention._plain_view)."""
  def __init__(self, e: Expr):
    slot, st = e.arg
    assert len(st.views) == 1 and st.views[0].mask is None, "attention template: a source must be one strided view"
    v = st.views[0]
    self.ptr, self.offset, self.strides, self.shape = f"in{slot}_ptr", v.offset, v.strides, v.shape


class AttentionRenderer:
  """Writes the source of one ATTENTION kernel."""
  def __init__(self, k: Kernel, interp: bool):
    self.k, self.arg, self.interp = k, k.body.arg, interp
    srcs = list(k.body.srcs)
    self.rand = next((e for e in srcs if e.op is Ops.RAND), None)
    loads = [_Src(e) for e in srcs if e.op is Ops.LOAD]
    names = ["q", "k", "v"] + (["o", "do", "dd"] if self.arg.kind != "forward" else [])
    self.src = dict(zip(names, loads))
    if self.arg.mask: self.src["mask"] = loads[len(names)]
    q, kk, v = self.src["q"], self.src["k"], self.src["v"]
    self.batch, self.L, self.S, self.E, self.EV = q.shape[:-2], q.shape[-2], kk.shape[-2], q.shape[-1], v.shape[-1]
    self.EP, self.EVP = max(16, next_pow2(self.E)), max(16, next_pow2(self.EV))
    self.dt = TL_DTYPE[k.buf_dtypes[1].name]
    self.half = self.dt != "tl.float32"
    tf32 = bool(backends.cuda.matmul.allow_tf32)
    self.prec = "" if self.half else ', input_precision="tf32"' if tf32 else ', input_precision="ieee"'
    self.lines: list[str] = []
    self.indent = 1

  def emit(self, line: str):
    """Append one source line at the current indent."""
    self.lines.append("  " * self.indent + line)

  # ---- shared pieces
  def _grid_index(self, rows: str, block: str):
    """pid -> (blk, bn): blocks of `rows` vary fastest (programs of one batch index share its K/V in L2)."""
    self.emit("pid = tl.program_id(0)")
    self.emit(f"NUM_BLK = tl.cdiv({rows}, {block})")
    heavy_first = self.arg.causal and self.arg.kind != "grad_kv"
    self.emit(f"blk = {'NUM_BLK - 1 - ' if heavy_first else ''}pid % NUM_BLK")
    self.emit("bn = (pid // NUM_BLK).to(tl.int64)")

  def _batch_bases(self):
    """Each source's base pointer for batch index bn (unravelled over the batch dims), and the output's."""
    terms = {name: [str(s.offset)] for name, s in self.src.items()}
    rest = "bn"
    for d in reversed(range(len(self.batch))):
      if self.batch[d] == 1: continue
      self.emit(f"b{d} = {rest} % {self.batch[d]}")
      if d: self.emit(f"r{d} = {rest} // {self.batch[d]}"); rest = f"r{d}"
      for name, s in self.src.items():
        if s.strides[d]: terms[name].append(f"b{d} * {s.strides[d]}")
    for name, s in self.src.items(): self.emit(f"{name}_b = {s.ptr} + ({' + '.join(terms[name])})")
    out_row = math.prod(self.k.out_shape[-2:])
    self.emit(f"out_b = out_ptr + bn * {out_row}")

  def _tile(self, name: str, rows: str, cols: str, nrows, ncols, transposed: bool = False) -> str:
    """A load of src `name` at row indices `rows` and column indices `cols` (1-D aranges), [rows, cols] or, transposed,
    [cols, rows]; out-of-range elements read 0."""
    s = self.src[name]
    sr, sc = s.strides[-2], s.strides[-1]
    if transposed:
      return (f"tl.load({name}_b + {rows}[None, :] * {sr} + {cols}[:, None] * {sc}, "
              f"mask=({rows}[None, :] < {nrows}) & ({cols}[:, None] < {ncols}), other=0)")
    return (f"tl.load({name}_b + {rows}[:, None] * {sr} + {cols}[None, :] * {sc}, "
            f"mask=({rows}[:, None] < {nrows}) & ({cols}[None, :] < {ncols}), other=0)")

  def _row_vec(self, name: str, rows: str, col: int | None = None) -> str:
    """A per-row value of src `name` ((*B, L) or column `col` of (*B, L, C))."""
    s = self.src[name]
    addr = f"{rows} * {s.strides[-1 if col is None else -2]}" + (f" + {col * s.strides[-1]}" if col is not None else "")
    return f"tl.load({name}_b + {addr}, mask={rows} < {self.L}, other=0)"

  def _lse(self, rows: str):
    """lse: the forward's base-2 log-sum-exp of rows, -inf for a row masked everywhere made 0 (its P is 0 anyway)."""
    if not self.half: self.emit(f"lse = {self._row_vec('o', rows, self.EV)}")
    else:
      self.emit(f"lo = {self._row_vec('o', rows, self.EV)}.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF")
      self.emit(f"hi = {self._row_vec('o', rows, self.EV + 1)}.to(tl.int16, bitcast=True).to(tl.int32)")
      self.emit("lse = ((hi << 16) | lo).to(tl.float32, bitcast=True)")
    self.emit('lse = tl.where(lse == float("-inf"), 0.0, lse)')

  def _scores(self, qk: str, rows: str, cols: str, t: bool, masked: bool):
    """s: q k^T tile scaled to base 2, masked entries -inf; keep: the dropout mask. t: the tile is [cols, rows].
    Not `masked`: a tile the loop bounds put inside the sequence and below the diagonal, where only a user mask
    applies (its rows may pass L: their q, dO and statistics load as 0 and they are never stored)."""
    r, c = (f"{rows}[None, :]", f"{cols}[:, None]") if t else (f"{rows}[:, None]", f"{cols}[None, :]")
    self.emit(f"s = {qk} * {self.arg.scale * LOG2E!r}")
    inb = f"({r} < {self.L}) & ({c} < {self.S})"
    ok = None
    if masked:
      self.emit(f"ok = {inb}" + (f" & ({r} >= {c})" if self.arg.causal else "")); ok = "ok"
    if self.arg.mask:
      m = self.src["mask"]
      val = f"tl.load(mask_b + {r} * {m.strides[-2]} + {c} * {m.strides[-1]}, mask={ok or inb}, other=0)"
      if self.arg.mask == "bool": self.emit(f"ok = {ok + ' & ' if ok else ''}({val} != 0)"); ok = "ok"
      else: self.emit(f"s = s + {val}.to(tl.float32) * {LOG2E!r}")
    if ok: self.emit('s = tl.where(ok, s, float("-inf"))')
    if self.rand is not None:
      self.emit(f"cnt = bn * {self.L * self.S} + {r}.to(tl.int64) * {self.S} + {c} + v1")
      self.emit("rnd, _, _, _ = tl.philox(v0, (cnt & 0xFFFFFFFF).to(tl.uint32), (cnt >> 32).to(tl.uint32), "
                "(cnt * 0).to(tl.uint32), (cnt * 0).to(tl.uint32))")
      self.emit(f"keep = tl.uint_to_uniform_float(rnd) >= {self.arg.dropout_p!r}")

  def _dropped(self, x: str) -> str:
    return x if self.rand is None else f"(tl.where(keep, {x}, 0.0) * {1 / (1 - self.arg.dropout_p)!r})"

  def _loops(self, var: str, stages, step: str, body):
    """One loop per (lo, hi, masked) stage: the tiles that need no bounds or causal mask run without them."""
    for lo, hi, masked in stages:
      self.emit(f"for {var} in range({lo}, {hi}, {step}):")
      self.indent += 1
      body(masked)
      self.indent -= 1

  def _key_stages(self):
    """Stages over key blocks for the query block at blk: whole blocks below the diagonal unmasked, then the rest
    (the diagonal blocks, the block running past S)."""
    full = f"({self.S} // BLOCK_N) * BLOCK_N"
    if self.arg.causal:
      mid = f"tl.minimum(((blk * BLOCK_M + 1) // BLOCK_N) * BLOCK_N, {full})"
      return [("0", mid, False), (mid, f"tl.minimum({self.S}, (blk + 1) * BLOCK_M)", True)]
    return [("0", full, False), (full, str(self.S), True)]

  # ---- the three kernels
  def _forward(self):
    self._grid_index(str(self.L), "BLOCK_M")
    self._batch_bases()
    self.emit("rows = blk * BLOCK_M + tl.arange(0, BLOCK_M)")
    self.emit(f"de = tl.arange(0, {self.EP})")
    self.emit(f"dv = tl.arange(0, {self.EVP})")
    self.emit(f"q = {self._tile('q', 'rows', 'de', self.L, self.E)}")
    self.emit('m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)')
    self.emit("l_i = tl.zeros([BLOCK_M], dtype=tl.float32)")
    self.emit(f"acc = tl.zeros([BLOCK_M, {self.EVP}], dtype=tl.float32)")
    self._loops("n0", self._key_stages(), "BLOCK_N", self._forward_step)
    drop = f" * {1 / (1 - self.arg.dropout_p)!r}" if self.rand is not None else ""
    self.emit(f"o = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]{drop}")
    self._forward_store()

  def _forward_step(self, masked: bool):
    self.emit("cols = n0 + tl.arange(0, BLOCK_N)")
    self.emit(f"kt = {self._tile('k', 'cols', 'de', self.S, self.E, transposed=True)}")
    self._scores(f"tl.dot(q, kt{self.prec})", "rows", "cols", False, masked)
    self.emit("m_new = tl.maximum(m_i, tl.max(s, 1))")
    self.emit('m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)')
    self.emit("p = tl.exp2(s - m_safe[:, None])")
    self.emit("alpha = tl.exp2(m_i - m_safe)")
    self.emit("l_i = l_i * alpha + tl.sum(p, 1)")
    if self.rand is not None: self.emit("p = tl.where(keep, p, 0.0)")
    self.emit(f"vt = {self._tile('v', 'cols', 'dv', self.S, self.EV)}")
    self.emit(f"acc = acc * alpha[:, None] + tl.dot(p.to({self.dt}), vt{self.prec})")
    self.emit("m_i = m_new")

  def _forward_store(self):
    w = self.EV + (1 if not self.half else 2)
    self.emit(f"tl.store(out_b + rows[:, None] * {w} + dv[None, :], o.to({self.dt}), mask=(rows[:, None] < {self.L}) & (dv[None, :] < {self.EV}))")
    self.emit("lse = m_i + tl.log2(l_i)")
    if not self.half: self.emit(f"tl.store(out_b + rows * {w} + {self.EV}, lse, mask=rows < {self.L})")
    else:   # the fp32 bits over two 16-bit columns, low half first (ops/attention.py)
      self.emit("bits = lse.to(tl.int32, bitcast=True)")
      self.emit(f"tl.store(out_b + rows * {w} + {self.EV}, (bits & 0xFFFF).to(tl.int16).to({self.dt}, bitcast=True), mask=rows < {self.L})")
      self.emit(f"tl.store(out_b + rows * {w} + {self.EV + 1}, ((bits >> 16) & 0xFFFF).to(tl.int16).to({self.dt}, bitcast=True), "
                f"mask=rows < {self.L})")

  def _grad_kv(self):
    self._grid_index(str(self.S), "BLOCK_N")
    self._batch_bases()
    self.emit("cols = blk * BLOCK_N + tl.arange(0, BLOCK_N)")
    self.emit(f"de = tl.arange(0, {self.EP})")
    self.emit(f"dv = tl.arange(0, {self.EVP})")
    self.emit(f"kb = {self._tile('k', 'cols', 'de', self.S, self.E)}")
    self.emit(f"vb = {self._tile('v', 'cols', 'dv', self.S, self.EV)}")
    self.emit(f"dk = tl.zeros([BLOCK_N, {self.EP}], dtype=tl.float32)")
    self.emit(f"dvacc = tl.zeros([BLOCK_N, {self.EVP}], dtype=tl.float32)")
    if self.arg.causal:   # query blocks from the one holding the diagonal; fully below it from `mid` on
      lo, mid = "(blk * BLOCK_N // BLOCK_M) * BLOCK_M", f"tl.minimum(tl.cdiv(blk * BLOCK_N + BLOCK_N - 1, BLOCK_M) * BLOCK_M, {self.L})"
      stages = [(lo, mid, True), (mid, str(self.L), False)]
    else: stages = [("0", str(self.L), False)]   # rows past L add 0; keys past S only touch their own (unstored) rows
    self._loops("m0", stages, "BLOCK_M", self._grad_kv_step)
    w = self.E + self.EV
    self.emit(f"tl.store(out_b + cols[:, None] * {w} + de[None, :], (dk * {self.arg.scale!r}).to({self.dt}), "
              f"mask=(cols[:, None] < {self.S}) & (de[None, :] < {self.E}))")
    self.emit(f"tl.store(out_b + cols[:, None] * {w} + {self.E} + dv[None, :], dvacc.to({self.dt}), "
              f"mask=(cols[:, None] < {self.S}) & (dv[None, :] < {self.EV}))")

  def _grad_kv_step(self, masked: bool):
    self.emit("rows = m0 + tl.arange(0, BLOCK_M)")
    self.emit(f"qb = {self._tile('q', 'rows', 'de', self.L, self.E)}")
    self.emit(f"dob = {self._tile('do', 'rows', 'dv', self.L, self.EV)}")
    self._lse("rows")
    self.emit(f"dd = {self._row_vec('dd', 'rows')}")
    self._scores(f"tl.dot(kb, tl.trans(qb){self.prec})", "rows", "cols", True, masked)
    self.emit("pt = tl.exp2(s - lse[None, :])")
    self.emit(f"dvacc += tl.dot({self._dropped('pt')}.to({self.dt}), dob{self.prec})")
    self.emit(f"dpt = {self._dropped(f'tl.dot(vb, tl.trans(dob){self.prec})')}")
    self.emit("dst = pt * (dpt - dd[None, :])")
    self.emit(f"dk += tl.dot(dst.to({self.dt}), qb{self.prec})")

  def _grad_q(self):
    self._grid_index(str(self.L), "BLOCK_M")
    self._batch_bases()
    self.emit("rows = blk * BLOCK_M + tl.arange(0, BLOCK_M)")
    self.emit(f"de = tl.arange(0, {self.EP})")
    self.emit(f"dv = tl.arange(0, {self.EVP})")
    self.emit(f"qb = {self._tile('q', 'rows', 'de', self.L, self.E)}")
    self.emit(f"dob = {self._tile('do', 'rows', 'dv', self.L, self.EV)}")
    self._lse("rows")
    self.emit(f"dd = {self._row_vec('dd', 'rows')}")
    self.emit(f"dq = tl.zeros([BLOCK_M, {self.EP}], dtype=tl.float32)")
    # a key past S loads as 0, but its P = 2^-lse could overflow (a row of large negative scores): masked
    self._loops("n0", self._key_stages(), "BLOCK_N", self._grad_q_step)
    self.emit(f"tl.store(out_b + rows[:, None] * {self.E} + de[None, :], (dq * {self.arg.scale!r}).to({self.dt}), "
              f"mask=(rows[:, None] < {self.L}) & (de[None, :] < {self.E}))")

  def _grad_q_step(self, masked: bool):
    self.emit("cols = n0 + tl.arange(0, BLOCK_N)")
    self.emit(f"kt = {self._tile('k', 'cols', 'de', self.S, self.E, transposed=True)}")
    self.emit(f"vt = {self._tile('v', 'cols', 'dv', self.S, self.EV, transposed=True)}")
    self._scores(f"tl.dot(qb, kt{self.prec})", "rows", "cols", False, masked)
    self.emit("p = tl.exp2(s - lse[:, None])")
    self.emit(f"dp = {self._dropped(f'tl.dot(dob, vt{self.prec})')}")
    self.emit("ds = p * (dp - dd[:, None])")
    self.emit(f"dq += tl.dot(ds.to({self.dt}), tl.trans(kt){self.prec})")

  def render(self, name: str) -> str:
    """The kernel's source: `def name(out_ptr, in1_ptr, ..., [v0, v1,] BLOCK_M, BLOCK_N)`."""
    {"forward": self._forward, "grad_kv": self._grad_kv, "grad_q": self._grad_q}[self.arg.kind]()
    params = ["out_ptr"] + [f"in{i}_ptr" for i in range(1, len(self.k.buf_dtypes))] + list(self.k.var_names)
    head = f"def {name}({', '.join(params)}, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):"
    return "import triton\nimport triton.language as tl\n\n\n" + "\n".join([head] + self.lines) + "\n"


def program_name(k: Kernel) -> str:
  """The kernel's name, `_tf32` appended when fp32 dots run in TF32 (the flag changes the source)."""
  return k.name + ("_tf32" if backends.cuda.matmul.allow_tf32 and k.buf_dtypes[1].name == "float32" else "")


def attention_configs(k: Kernel, interp: bool) -> tuple[LaunchConfig, ...]:
  """interp: one config of INTERP_BLOCK tiles (smaller when the sequence is). cuda: CUDA_TILES for the kind, halved
  for head dims over 128 and for fp32 (registers and shared memory), fitted to the problem and deduplicated."""
  r = AttentionRenderer(k, interp)
  rows, cols = r.L, r.S
  fit = lambda b, n: max(16, min(b, next_pow2(n)))   # noqa: E731
  if interp: cands = ((INTERP_BLOCK, INTERP_BLOCK, 4, 1),)
  else:
    big = max(r.EP, r.EVP) > 128 or not r.half
    cands = tuple((max(16, bm // 2) if big else bm, max(16, bn // 2) if big else bn, w, min(s, 2) if big else s)
                  for bm, bn, w, s in CUDA_TILES[k.body.arg.kind])
  configs, seen = [], set()
  for bm, bn, warps, stages in cands:
    bm, bn = fit(bm, rows), fit(bn, cols)
    if (bm, bn) in seen: continue
    seen.add((bm, bn))
    blocks = -(-cols // bn) if k.body.arg.kind == "grad_kv" else -(-rows // bm)
    configs.append(LaunchConfig({"BLOCK_M": bm, "BLOCK_N": bn}, (blocks * math.prod(r.batch),), num_warps=warps, num_stages=stages))
  return tuple(configs)


def attention_program(k: Kernel, interp: bool) -> TritonProgram:
  """The TritonProgram of an ATTENTION kernel: template source, signature and attention_configs(k, interp)."""
  name = program_name(k)
  return TritonProgram(name, AttentionRenderer(k, interp).render(name), signature(k), attention_configs(k, interp))
