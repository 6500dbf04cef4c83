"""LSTM (multi-layer, optionally bidirectional, batch_first), torch's names, gate order and init."""
from __future__ import annotations
import math
from typing import Optional
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.init import uniform_param


class LSTM(Module):
  """A multi-layer LSTM, as torch.nn.LSTM. Gates (i, f, g, o) stacked in weight_ih_l{k} (4H, in)
  and weight_hh_l{k} (4H, H) (plus `_reverse` copies when bidirectional), every weight and
  bias ~ U(-1/sqrt(H), 1/sqrt(H)). forward(x, (h0, c0)=None) -> (output, (h_n, c_n)) with
  x (L, B, in), or (B, L, in) when batch_first, or unbatched (L, in); output (L, B, D*H),
  h_n and c_n (num_layers*D, B, H), D = 2 if bidirectional else 1. The time loop is
  unrolled into the lazy graph (one matmul per step for the hidden state; the input
  projections of all steps are one matmul). No proj_size, no packed sequences."""
  def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
               dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
    super().__init__()
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
      if not isinstance(v, int) or v <= 0: raise ValueError(f"LSTM: {name} must be a positive int, got {v!r}")
    if proj_size: raise ValueError("LSTM: proj_size is not supported")
    if not 0 <= dropout <= 1: raise ValueError(f"LSTM: dropout must be in [0, 1], got {dropout}")
    self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
    self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
    dirs = 2 if bidirectional else 1
    bound = 1 / math.sqrt(hidden_size)
    for layer in range(num_layers):
      in_size = input_size if layer == 0 else hidden_size * dirs
      for suffix in ("", "_reverse")[:dirs]:
        setattr(self, f"weight_ih_l{layer}{suffix}", uniform_param(4 * hidden_size, in_size, bound=bound, dtype=dtype, device=device))
        setattr(self, f"weight_hh_l{layer}{suffix}", uniform_param(4 * hidden_size, hidden_size, bound=bound, dtype=dtype, device=device))
        if bias:
          setattr(self, f"bias_ih_l{layer}{suffix}", uniform_param(4 * hidden_size, bound=bound, dtype=dtype, device=device))
          setattr(self, f"bias_hh_l{layer}{suffix}", uniform_param(4 * hidden_size, bound=bound, dtype=dtype, device=device))

  def forward(self, x: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None):
    """(output, (h_n, c_n)); hx defaults to zeros."""
    unbatched = x.ndim == 2
    if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
      raise ValueError(f"LSTM: expected input (L, B, {self.input_size}) (or batch_first / unbatched), got {x.shape}")
    if unbatched: x = x.unsqueeze(1)
    elif self.batch_first: x = x.transpose(0, 1)
    T, B, _ = x.shape
    dirs, H = 2 if self.bidirectional else 1, self.hidden_size
    if hx is None:
      h0 = c0 = Tensor.zeros(self.num_layers * dirs, B, H, dtype=x.dtype, device=x.device)
    else:
      h0, c0 = hx
      if unbatched: h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
      want = (self.num_layers * dirs, B, H)
      if h0.shape != want or c0.shape != want: raise ValueError(f"LSTM: h0 and c0 must be {want}, got {h0.shape} and {c0.shape}")
    hs, cs = [], []
    for layer in range(self.num_layers):
      outs = []
      for d, suffix in enumerate(("", "_reverse")[:dirs]):
        k = layer * dirs + d
        out, h, c = self._run(x, h0[k], c0[k], layer, suffix, reverse=d == 1)
        outs.append(out); hs.append(h); cs.append(c)
      x = outs[0] if dirs == 1 else Tensor.cat(outs, -1)
      if self.dropout > 0 and self.training and layer < self.num_layers - 1: x = x.dropout(self.dropout)
    h_n, c_n = Tensor.stack(hs, 0), Tensor.stack(cs, 0)
    if unbatched: return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
    return (x.transpose(0, 1) if self.batch_first else x), (h_n, c_n)

  def _run(self, x: Tensor, h: Tensor, c: Tensor, layer: int, suffix: str, reverse: bool):
    """One direction of one layer over the (T, B, in) sequence: returns (T, B, H), h_T, c_T."""
    w_ih, w_hh = getattr(self, f"weight_ih_l{layer}{suffix}"), getattr(self, f"weight_hh_l{layer}{suffix}")
    b_ih, b_hh = (getattr(self, f"bias_ih_l{layer}{suffix}"), getattr(self, f"bias_hh_l{layer}{suffix}")) if self.bias else (None, None)
    xw = x.linear(w_ih, b_ih)                                  # input projections of every step in one matmul
    if b_hh is not None: xw = xw + b_hh
    H, T = self.hidden_size, x.shape[0]
    outs = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
      gates = xw[t] + h.linear(w_hh)
      i, f, g, o = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid(), gates[:, 2 * H:3 * H].tanh(), gates[:, 3 * H:].sigmoid()
      c = f * c + i * g
      h = o * c.tanh()
      outs[t] = h
    return Tensor.stack(outs, 0), h, c

  def extra_repr(self):
    """The settings repr(LSTM) shows, formatted as torch's."""
    return recurrent_repr(self)


def recurrent_repr(m) -> str:
  """extra_repr of a recurrent layer (LSTM, GRU, RNN) as torch writes it: sizes, then the settings that differ from the defaults."""
  s = f"{m.input_size}, {m.hidden_size}"
  if m.num_layers != 1: s += f", num_layers={m.num_layers}"
  if m.bias is not True: s += f", bias={m.bias}"
  if m.batch_first is not False: s += f", batch_first={m.batch_first}"
  if m.dropout != 0: s += f", dropout={m.dropout}"
  if m.bidirectional is not False: s += f", bidirectional={m.bidirectional}"
  return s
