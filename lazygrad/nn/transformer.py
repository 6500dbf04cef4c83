"""The transformer stacks of torch.nn beside attention.py's TransformerEncoderLayer: TransformerEncoder,
TransformerDecoderLayer, TransformerDecoder and Transformer, with torch's submodule names (so its state dicts
load), masks and norm_first; the stacks deep-copy their layer num_layers times, as torch."""
from __future__ import annotations
import copy
from typing import Callable, Optional, Union
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.containers import ModuleList
from lazygrad.nn.layers import Linear, Dropout
from lazygrad.nn.norm import LayerNorm
from lazygrad.nn.init import xavier_uniform_
from lazygrad.nn.attention import MultiheadAttention, TransformerEncoderLayer, _ACTIVATIONS


def _clones(layer: Module, n: int) -> ModuleList:
  """n deep copies of layer (equal initial weights, as torch's _get_clones), their parameters registered as leaves."""
  out = ModuleList([copy.deepcopy(layer) for _ in range(n)])
  for p in out.parameters(): p.requires_grad = True   # the setter registers the copy as a leaf for backward()
  return out


class TransformerEncoder(Module):
  """torch.nn.TransformerEncoder: num_layers copies of encoder_layer applied in turn, then the optional norm.
  forward(src, mask=None, src_key_padding_mask=None, is_causal=None)."""
  def __init__(self, encoder_layer: Module, num_layers: int, norm: Optional[Module] = None, enable_nested_tensor: bool = True,
               mask_check: bool = True):
    super().__init__()
    self.layers, self.num_layers, self.norm = _clones(encoder_layer, num_layers), num_layers, norm

  def forward(self, src: Tensor, mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
              is_causal: Optional[bool] = None) -> Tensor:
    """The stack on src (masks as TransformerEncoderLayer's)."""
    x = src
    for layer in self.layers: x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
    return self.norm(x) if self.norm is not None else x


class TransformerDecoderLayer(Module):
  """One transformer decoder block, as torch.nn.TransformerDecoderLayer: self-attention on tgt, cross-attention to
  memory and a feed-forward network, each with dropout and a residual; post-norm by default, pre-norm with norm_first.
  tgt (T, B, E) and memory (S, B, E), batch first with batch_first=True."""
  def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
               activation: Union[str, Callable] = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
               norm_first: bool = False, bias: bool = True, device=None, dtype=None):
    super().__init__()
    if isinstance(activation, str):
      if activation not in _ACTIVATIONS:
        raise ValueError(f"TransformerDecoderLayer: activation must be 'relu', 'gelu' or a callable, got {activation!r}")
      activation = _ACTIVATIONS[activation]
    kw = {"device": device, "dtype": dtype}
    self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
    self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
    self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
    self.dropout = Dropout(dropout)
    self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
    self.norm_first = norm_first
    self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
    self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
    self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
    self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)
    self.activation = activation

  def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None, memory_mask: Optional[Tensor] = None,
              tgt_key_padding_mask: Optional[Tensor] = None, memory_key_padding_mask: Optional[Tensor] = None,
              tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
    """The block on tgt attending to memory (masks as MultiheadAttention's attn_mask and key_padding_mask)."""
    x = tgt
    if self.norm_first:
      x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
      x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
      return x + self._ff_block(self.norm3(x))
    x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
    x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
    return self.norm3(x + self._ff_block(x))

  def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> Tensor:
    out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal)[0]
    return self.dropout1(out)

  def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal) -> Tensor:
    out = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal)[0]
    return self.dropout2(out)

  def _ff_block(self, x) -> Tensor:
    return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoder(Module):
  """torch.nn.TransformerDecoder: num_layers copies of decoder_layer applied in turn, then the optional norm."""
  def __init__(self, decoder_layer: Module, num_layers: int, norm: Optional[Module] = None):
    super().__init__()
    self.layers, self.num_layers, self.norm = _clones(decoder_layer, num_layers), num_layers, norm

  def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None, memory_mask: Optional[Tensor] = None,
              tgt_key_padding_mask: Optional[Tensor] = None, memory_key_padding_mask: Optional[Tensor] = None,
              tgt_is_causal: Optional[bool] = None, memory_is_causal: bool = False) -> Tensor:
    """The stack on tgt attending to memory."""
    x = tgt
    for layer in self.layers:
      x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
    return self.norm(x) if self.norm is not None else x


class Transformer(Module):
  """torch.nn.Transformer: an encoder and a decoder stack with final LayerNorms; every parameter of more than one dim is
  re-initialised xavier-uniform, as torch. forward(src, tgt, masks...) -> (T, B, E) (batch first with batch_first)."""
  def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
               dim_feedforward: int = 2048, dropout: float = 0.1, activation: Union[str, Callable] = "relu",
               custom_encoder: Optional[Module] = None, custom_decoder: Optional[Module] = None, layer_norm_eps: float = 1e-5,
               batch_first: bool = False, norm_first: bool = False, bias: bool = True, device=None, dtype=None):
    super().__init__()
    kw = {"device": device, "dtype": dtype}
    common = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first, bias)
    self.encoder = custom_encoder or TransformerEncoder(TransformerEncoderLayer(*common, **kw), num_encoder_layers,
                                                        LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
    self.decoder = custom_decoder or TransformerDecoder(TransformerDecoderLayer(*common, **kw), num_decoder_layers,
                                                        LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
    self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
    for p in self.parameters():
      if p.ndim > 1: xavier_uniform_(p)

  @staticmethod
  def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
    """torch.nn.Transformer.generate_square_subsequent_mask: (sz, sz) float, -inf above the diagonal, 0 elsewhere."""
    return Tensor.ones(sz, sz, dtype="bool", device=device).triu(1).where(float("-inf"), 0.0).cast(dtype or "float32")

  def forward(self, src: Tensor, tgt: Tensor, src_mask: Optional[Tensor] = None, tgt_mask: Optional[Tensor] = None,
              memory_mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
              tgt_key_padding_mask: Optional[Tensor] = None, memory_key_padding_mask: Optional[Tensor] = None,
              src_is_causal: Optional[bool] = None, tgt_is_causal: Optional[bool] = None, memory_is_causal: bool = False) -> Tensor:
    """Encode src, then decode tgt attending to the encoding."""
    memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
    return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)


__all__ = ["TransformerEncoder", "TransformerDecoderLayer", "TransformerDecoder", "Transformer"]
