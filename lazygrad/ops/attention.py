"""The argument of an ATTENTION node (a template op): which of the three flash-attention kernels it is and
the settings every one of them needs. The node layouts, shared by the front end (tensor_attention.py), the
numpy implementation and the Triton template:

- kind "forward": srcs (q, k, v[, mask][, rand]) -> out (*B, L, Ev + lse_cols(dtype)): the output O in
  out[..., :Ev] and the row log-sum-exp of the scaled scores, base 2 (log2 sum_j 2^(s_ij * log2 e)), in the
  last columns: one float32 column for float32, its 32 bits split over two 16-bit columns (low half first)
  for float16/bfloat16 (the lazy graph has one output per node; this keeps the statistic in full precision).
- kind "grad_q": srcs (q, k, v, out, dO, D[, mask][, rand]) -> dQ (*B, L, E).
- kind "grad_kv": the same srcs -> (*B, S, E + Ev): dK in [..., :E], dV in [..., E:].

q (*B, L, E), k (*B, S, E), v (*B, S, Ev), dO (*B, L, Ev), D = rowsum(dO * O) (*B, L) float32, the mask
(*B, L, S) (bool: True keeps; float: added to the scaled scores), rand a RAND node of shape (*B, L, S) whose
(seed, counter) key the dropout mask: score (b, i, j) is kept when its uniform number (Philox, counter = its
flat index + the node's counter, as Tensor.rand) is >= dropout_p."""
from __future__ import annotations
from dataclasses import dataclass
from lazygrad.dtype import DType

KINDS = ("forward", "grad_q", "grad_kv")


@dataclass(frozen=True)
class AttentionArg:
  """An ATTENTION node's settings: kind (one of KINDS), is_causal (row i attends to columns j <= i), the scale
  of q k^T, the dropout probability and the mask kind (None, "bool" or "add")."""
  kind: str
  causal: bool
  scale: float
  dropout_p: float = 0.0
  mask: str | None = None

  @property
  def has_rand(self) -> bool:
    """Whether the node reads a RAND source (dropout)."""
    return self.dropout_p > 0


def lse_cols(dtype: DType) -> int:
  """How many columns of the forward output hold the float32 log-sum-exp (1 for float32, 2 for 16-bit floats)."""
  return 4 // dtype.itemsize


def attention_kernel_name(arg: AttentionArg, src_shapes) -> str:
  """attn_fwd_causal_LxSxE[xN], attn_bwd_dq_..., attn_bwd_dkv_... (N: the flattened batch, when over 1)."""
  q, k = src_shapes[0], src_shapes[1]
  n = 1
  for s in q[:-2]: n *= s
  kind = {"forward": "fwd", "grad_q": "bwd_dq", "grad_kv": "bwd_dkv"}[arg.kind]
  tags = (["causal"] if arg.causal else []) + ([f"{arg.mask}mask"] if arg.mask else []) + (["dropout"] if arg.dropout_p else [])
  return "_".join(["attn", kind] + tags + [f"{q[-2]}x{k[-2]}x{q[-1]}" + (f"x{n}" if n > 1 else "")])


def attention_flops(arg: AttentionArg, src_shapes) -> int:
  """Multiply-adds times 2 of the kernel's GEMMs (the probabilities recomputed by a backward kernel count):
  forward q k^T and P v; grad_q q k^T, dO v^T, dS k; grad_kv q k^T, dO v^T, P^T dO, dS^T q."""
  q, k, v = src_shapes[:3]
  n = 1
  for s in q[:-2]: n *= s
  qk, pv = n * q[-2] * k[-2] * q[-1], n * q[-2] * k[-2] * v[-1]
  flops = {"forward": qk + pv, "grad_q": 2 * qk + pv, "grad_kv": 2 * qk + 2 * pv}[arg.kind]
  return 2 * flops // (2 if arg.causal else 1)
