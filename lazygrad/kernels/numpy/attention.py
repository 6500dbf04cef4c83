"""The ATTENTION template op on the numpy device: the same math as the Triton template (kernels/triton/attention.py),
written over whole score matrices (plain numpy: the cpu device has the memory; only the Triton template must avoid
them). Layouts and the base-2 log-sum-exp: ops/attention.py. Scores are float32 whatever the inputs' dtype, and in the
natural log domain (the stored log-sum-exp is converted to base 2 and back)."""
from __future__ import annotations
import numpy as np
from lazygrad.kernels.ir import Expr
from lazygrad.kernels.numpy import lib
from lazygrad.ops import Ops

LOG2E = 1.4426950408889634


def _load(bufs, e: Expr, dtype=np.float32) -> np.ndarray:
  """A source of the op (a LOAD) as an array of its shape (a broadcasting view where it can be), in dtype."""
  slot, st = e.arg
  return np.broadcast_to(lib.load(bufs[slot], st), st.shape).astype(dtype, copy=False)


def _lse_bits_load(bufs, e: Expr, ev: int) -> np.ndarray:
  """The base-2 log-sum-exp stored in the forward output's last columns (see ops/attention.py), as float32."""
  slot, st = e.arg
  buf = bufs[slot]
  if buf.dtype.itemsize == 4: return np.broadcast_to(lib.load(buf, st), st.shape)[..., ev].astype(np.float32)
  bits = np.broadcast_to(lib.load(buf.view(np.uint16), st), st.shape)[..., ev:ev + 2].astype(np.uint32)
  return np.ascontiguousarray(bits[..., 0] | (bits[..., 1] << 16)).view(np.float32)


def _scores(arg, q, k, srcs, bufs, vars_):
  """(q k^T * scale with masked entries -inf, the dropout keep mask or None), with as few passes over the scores as
  numpy allows: the scale goes on q, each mask is one add (0 / -inf, or the float mask). Natural log domain here:
  numpy's exp2 takes a slow path on very negative arguments (masked entries), its exp does not."""
  s = np.matmul(q * np.float32(arg.scale), np.swapaxes(k, -1, -2))
  L, S = s.shape[-2:]
  if arg.causal: s += np.where(np.arange(L)[:, None] >= np.arange(S)[None, :], np.float32(0), np.float32(-np.inf))
  keep = None
  for e in srcs:
    if e.op is Ops.RAND:
      st, var = e.arg
      keep = lib.rand(st, vars_[var], vars_[var + 1]).reshape(st.shape) >= np.float32(arg.dropout_p)
    elif e.op is Ops.LOAD and arg.mask == "bool": s += np.where(_load(bufs, e, bool), np.float32(0), np.float32(-np.inf))
    elif e.op is Ops.LOAD: s += _load(bufs, e)
  return s, keep


def _dropped(x: np.ndarray, keep, p: float) -> np.ndarray:
  return x if keep is None else np.where(keep, x, np.float32(0)) * np.float32(1 / (1 - p))


def _exp_minus(s: np.ndarray, row: np.ndarray) -> np.ndarray:
  """exp(s - row[..., None]) in place over s; a row at -inf (masked everywhere) subtracts 0, so it stays 0."""
  s -= np.where(row == -np.inf, np.float32(0), row)[..., None]
  return np.exp(s, out=s)


def _forward(arg, body: Expr, bufs, vars_, out_shape):
  q, k, v = (_load(bufs, e) for e in body.srcs[:3])
  s, keep = _scores(arg, q, k, body.srcs[3:], bufs, vars_)
  m = np.max(s, axis=-1, initial=-np.inf)   # (with `initial`, numpy's max over a short last axis is ~3x faster)
  p = _exp_minus(s, m)
  denom = np.matmul(p, np.ones(p.shape[-1], np.float32))   # the row sums, on BLAS (np.sum over a short axis is slow)
  lse = ((m + np.log(denom)) * np.float32(LOG2E)).astype(np.float32)
  o = np.matmul(_dropped(p, keep, arg.dropout_p), v)
  o /= np.where(denom == 0, np.float32(1), denom)[..., None]
  out = bufs[0].reshape(out_shape)
  ev = v.shape[-1]
  out[..., :ev] = o
  if out.dtype.itemsize == 4: out[..., ev] = lse
  else: bufs[0].view(np.uint16).reshape(out_shape)[..., ev:] = lse.view(np.uint16).reshape(lse.shape + (2,))


def _backward(arg, body: Expr, bufs, vars_, out_shape):
  q, k, v = (_load(bufs, e) for e in body.srcs[:3])
  ev = v.shape[-1]
  lse = _lse_bits_load(bufs, body.srcs[3], ev) * np.float32(1 / LOG2E)
  do, d = _load(bufs, body.srcs[4]), _load(bufs, body.srcs[5])
  s, keep = _scores(arg, q, k, body.srcs[6:], bufs, vars_)
  p = _exp_minus(s, lse)
  ds = _dropped(np.matmul(do, np.swapaxes(v, -1, -2)), keep, arg.dropout_p)
  ds -= d[..., None]
  ds *= p
  out = bufs[0].reshape(out_shape)
  if arg.kind == "grad_q": out[...] = np.matmul(ds, k) * np.float32(arg.scale); return
  e = q.shape[-1]
  out[..., :e] = np.matmul(np.swapaxes(ds, -1, -2), q) * np.float32(arg.scale)
  out[..., e:] = np.matmul(np.swapaxes(_dropped(p, keep, arg.dropout_p), -1, -2), do)


def run_attention(body: Expr, out_shape, bufs, vars_) -> None:
  """Compute an ATTENTION kernel into bufs[0] (flat, of out_shape)."""
  with np.errstate(all="ignore"):
    (_forward if body.arg.kind == "forward" else _backward)(body.arg, body, bufs, vars_, out_shape)
