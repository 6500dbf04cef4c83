"""MultiheadAttention and TransformerEncoderLayer, with torch's parameter names, init and masks."""
from __future__ import annotations
import math
from typing import Callable, Optional, Union
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.init import uniform_param, const_param
from lazygrad.nn.layers import Linear, Dropout
from lazygrad.nn.norm import LayerNorm


def _additive_mask(mask: Optional[Tensor], what: str) -> Optional[Tensor]:
  """torch's mask convention for attention modules: a bool mask is True where attending is
  NOT allowed (the opposite of scaled_dot_product_attention's); a float mask is added."""
  if mask is None: return None
  if mask.dtype.is_bool: return mask.where(float("-inf"), 0.0)
  if not mask.dtype.is_float: raise TypeError(f"MultiheadAttention: {what} must be a bool or float tensor, got {mask.dtype}")
  return mask


class MultiheadAttention(Module):
  """Multi-head self/cross attention, as torch.nn.MultiheadAttention: query (L, B, E), key and
  value (S, B, E) -> output (L, B, E); (B, L, E) with batch_first=True, or unbatched (L, E).
  Parameters as torch: in_proj_weight (3E, E) xavier-uniform, in_proj_bias zeros, out_proj
  (a Linear with zero bias). forward(query, key, value, key_padding_mask, need_weights,
  attn_mask, average_attn_weights, is_causal) returns (output, attention weights (B, L, S),
  averaged over heads unless average_attn_weights=False, or None when need_weights=False).
  Masks follow torch: bool True = not allowed, float = added to the scores. kdim/vdim different
  from embed_dim give separate q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim)
  and no in_proj_weight, as torch. Not supported: add_bias_kv, add_zero_attn."""
  def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, add_bias_kv: bool = False,
               add_zero_attn: bool = False, kdim: Optional[int] = None, vdim: Optional[int] = None, batch_first: bool = False,
               device=None, dtype=None):
    super().__init__()
    if not isinstance(embed_dim, int) or not isinstance(num_heads, int) or embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
      raise ValueError(f"MultiheadAttention: embed_dim {embed_dim!r} must be a positive multiple of num_heads {num_heads!r}")
    if add_bias_kv or add_zero_attn: raise ValueError("MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
    kdim, vdim = kdim or embed_dim, vdim or embed_dim
    if not isinstance(kdim, int) or not isinstance(vdim, int) or kdim <= 0 or vdim <= 0:
      raise ValueError(f"MultiheadAttention: kdim {kdim!r} and vdim {vdim!r} must be positive ints")
    self.embed_dim, self.kdim, self.vdim, self.num_heads, self.head_dim = embed_dim, kdim, vdim, num_heads, embed_dim // num_heads
    self.dropout, self.batch_first = dropout, batch_first
    self._qkv_same_embed_dim = kdim == embed_dim and vdim == embed_dim
    if self._qkv_same_embed_dim:
      self.in_proj_weight = uniform_param(3 * embed_dim, embed_dim, bound=math.sqrt(6.0 / (4 * embed_dim)), dtype=dtype, device=device)
    else:   # torch: one xavier-uniform weight per projection, in_proj_weight None
      for name, cols in (("q_proj_weight", embed_dim), ("k_proj_weight", kdim), ("v_proj_weight", vdim)):
        setattr(self, name, uniform_param(embed_dim, cols, bound=math.sqrt(6.0 / (embed_dim + cols)), dtype=dtype, device=device))
      self.register_parameter("in_proj_weight", None)
    self.register_parameter("in_proj_bias", const_param(3 * embed_dim, value=0.0, dtype=dtype, device=device) if bias else None)
    self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
    if bias: self.out_proj.bias = const_param(embed_dim, value=0.0, dtype=dtype, device=device)

  def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None, need_weights: bool = True,
              attn_mask: Optional[Tensor] = None, average_attn_weights: bool = True, is_causal: bool = False):
    """(output, weights or None); need_weights=False takes the scaled_dot_product_attention path (no weights materialised)."""
    unbatched = query.ndim == 2
    if unbatched: query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)   # (L, 1, E)
    elif self.batch_first: query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
    if unbatched and key_padding_mask is not None: key_padding_mask = key_padding_mask.unsqueeze(0)
    # from here: (L, B, E), torch's native layout
    L, B, E = query.shape
    S = key.shape[0]
    if E != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim or key.shape[:2] != value.shape[:2] or key.shape[1] != B:
      raise ValueError(f"MultiheadAttention: query {query.shape}, key {key.shape} and value {value.shape} do not fit embed_dim "
                       f"{self.embed_dim}, kdim {self.kdim}, vdim {self.vdim}")
    H, D = self.num_heads, self.head_dim
    b = self.in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
    if self._qkv_same_embed_dim: w = self.in_proj_weight; wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
    else: wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
    q, k, v = query.linear(wq, bq), key.linear(wk, bk), value.linear(wv, bv)
    heads = lambda t, n: t.reshape(n, B, H, D).permute(1, 2, 0, 3)   # (B, H, n, D)
    q, k, v = heads(q, L), heads(k, S), heads(v, S)
    p = self.dropout if self.training else 0.0
    if not need_weights and is_causal and key_padding_mask is None and (attn_mask is None or attn_mask.shape == (L, S)):
      # as torch: with is_causal, attn_mask is taken to be the causal mask; the template masks by index (no L x S mask)
      out, attn = q.scaled_dot_product_attention(k, v, dropout_p=p, is_causal=True), None
      return self._finish(out, attn, L, B, E, unbatched, average_attn_weights)
    mask = self._mask(attn_mask, key_padding_mask, is_causal, B, L, S, query.device)
    if need_weights:
      scores = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(D))
      attn = (scores + mask if mask is not None else scores).softmax(-1)
      out = (attn.dropout(p) if p > 0 else attn) @ v
    else:
      out, attn = q.scaled_dot_product_attention(k, v, attn_mask=mask, dropout_p=p), None
    return self._finish(out, attn, L, B, E, unbatched, average_attn_weights)

  def _finish(self, out, attn, L, B, E, unbatched, average_attn_weights):
    """The output projection and the layout back to the caller's, for the heads' output (B, H, L, D)."""
    out = self.out_proj(out.permute(2, 0, 1, 3).reshape(L, B, E))              # (L, B, E)
    if unbatched: out = out.squeeze(1)
    elif self.batch_first: out = out.transpose(0, 1)
    if attn is not None:
      if average_attn_weights: attn = attn.mean(1)
      if unbatched: attn = attn.squeeze(0)
    return out, attn

  def _mask(self, attn_mask, key_padding_mask, is_causal, B, L, S, device) -> Optional[Tensor]:
    """One additive mask broadcasting to the scores (B, H, L, S)."""
    if is_causal and attn_mask is None: attn_mask = Tensor.ones(L, S, device=device).triu(1).bool()
    m = _additive_mask(attn_mask, "attn_mask")
    if m is not None:
      if m.shape == (L, S): pass
      elif m.shape == (B * self.num_heads, L, S): m = m.reshape(B, self.num_heads, L, S)
      else: raise ValueError(f"MultiheadAttention: attn_mask must be ({L}, {S}) or ({B * self.num_heads}, {L}, {S}), got {m.shape}")
    kp = _additive_mask(key_padding_mask, "key_padding_mask")
    if kp is not None:
      if kp.shape != (B, S): raise ValueError(f"MultiheadAttention: key_padding_mask must be ({B}, {S}), got {kp.shape}")
      kp = kp.reshape(B, 1, 1, S)
      m = kp if m is None else m + kp
    return m

  def extra_repr(self):
    """The settings repr(MultiheadAttention) shows, formatted as torch's."""
    return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


_ACTIVATIONS = {"relu": Tensor.relu, "gelu": Tensor.gelu}


class TransformerEncoderLayer(Module):
  """One transformer encoder block, as torch.nn.TransformerEncoderLayer: self-attention and a
  feed-forward network (linear1, activation, dropout, linear2), each with dropout and a
  residual; post-norm by default, pre-norm with norm_first=True. src (S, B, E), or (B, S, E)
  with batch_first=True -> the same shape. activation: 'relu', 'gelu' or a callable.
  Submodule names match torch's, so its state dicts load."""
  def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
               activation: Union[str, Callable] = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
               norm_first: bool = False, bias: bool = True, device=None, dtype=None):
    super().__init__()
    if isinstance(activation, str):
      if activation not in _ACTIVATIONS:
        raise ValueError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a callable, got {activation!r}")
      activation = _ACTIVATIONS[activation]
    kw = {"device": device, "dtype": dtype}
    self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
    self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
    self.dropout = Dropout(dropout)
    self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
    self.norm_first = norm_first
    self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
    self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
    self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
    self.activation = activation

  def forward(self, src: Tensor, src_mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
              is_causal: bool = False) -> Tensor:
    """The block on src; src_mask and src_key_padding_mask as MultiheadAttention's attn_mask and key_padding_mask."""
    x = src
    if self.norm_first:
      x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
      return x + self._ff_block(self.norm2(x))
    x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
    return self.norm2(x + self._ff_block(x))

  def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> Tensor:
    out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal)[0]
    return self.dropout1(out)

  def _ff_block(self, x) -> Tensor:
    return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
