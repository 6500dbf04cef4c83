"""Recurrent layers beside rnn.py's LSTM: GRU and RNN (tanh or relu), and the single-step cells RNNCell,
GRUCell and LSTMCell, with torch's parameter names, gate order, init and shapes. The time loop is
unrolled into the lazy graph; the input projections of all steps are one matmul."""
from __future__ import annotations
import math
from typing import Optional
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.init import uniform_param
from lazygrad.nn.rnn import recurrent_repr


def _gru_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Optional[Tensor], H: int) -> Tensor:
  """One GRU step, torch's gate order (r, z, n); the reset gate multiplies the hidden projection including its bias."""
  hw = h.linear(w_hh, b_hh)
  r = (xw[..., :H] + hw[..., :H]).sigmoid()
  z = (xw[..., H:2 * H] + hw[..., H:2 * H]).sigmoid()
  n = (xw[..., 2 * H:] + r * hw[..., 2 * H:]).tanh()
  return (1 - z) * n + z * h


def _rnn_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Optional[Tensor], relu: bool) -> Tensor:
  """One Elman RNN step: act(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
  pre = xw + h.linear(w_hh, b_hh)
  return pre.relu() if relu else pre.tanh()


class _RecurrentBase(Module):
  """GRU and RNN (torch's RNNBase without proj_size): weight_ih_l{k}{_reverse} (G*H, in), weight_hh_l{k} (G*H, H) and
  the biases, all ~ U(-1/sqrt(H), 1/sqrt(H)); forward(x, h0=None) -> (output, h_n) with x (L, B, in), (B, L, in) when
  batch_first, or unbatched (L, in); output (L, B, D*H) and h_n (num_layers*D, B, H)."""
  _gates = 3
  def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
               dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
    super().__init__()
    name = type(self).__name__
    for arg, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
      if not isinstance(v, int) or v <= 0: raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
    if not 0 <= dropout <= 1: raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
    self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
    self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
    dirs, G, bound = 2 if bidirectional else 1, self._gates, 1 / math.sqrt(hidden_size)
    for layer in range(num_layers):
      in_size = input_size if layer == 0 else hidden_size * dirs
      for suffix in ("", "_reverse")[:dirs]:
        setattr(self, f"weight_ih_l{layer}{suffix}", uniform_param(G * hidden_size, in_size, bound=bound, dtype=dtype, device=device))
        setattr(self, f"weight_hh_l{layer}{suffix}", uniform_param(G * hidden_size, hidden_size, bound=bound, dtype=dtype, device=device))
        if bias:
          setattr(self, f"bias_ih_l{layer}{suffix}", uniform_param(G * hidden_size, bound=bound, dtype=dtype, device=device))
          setattr(self, f"bias_hh_l{layer}{suffix}", uniform_param(G * hidden_size, bound=bound, dtype=dtype, device=device))

  def _step(self, xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Optional[Tensor]) -> Tensor:
    raise NotImplementedError

  def forward(self, x: Tensor, hx: Optional[Tensor] = None):
    """(output, h_n); hx defaults to zeros."""
    name = type(self).__name__
    if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
      raise ValueError(f"{name}: expected input (L, B, {self.input_size}) (or batch_first / unbatched), got {x.shape}")
    unbatched = x.ndim == 2
    if unbatched: x = x.unsqueeze(1)
    elif self.batch_first: x = x.transpose(0, 1)
    dirs, H, B = 2 if self.bidirectional else 1, self.hidden_size, x.shape[1]
    want = (self.num_layers * dirs, B, H)
    h0 = Tensor.zeros(*want, dtype=x.dtype, device=x.device) if hx is None else (hx.unsqueeze(1) if unbatched else hx)
    if h0.shape != want: raise ValueError(f"{name}: h0 must be {want}, got {h0.shape}")
    hs = []
    for layer in range(self.num_layers):
      outs = []
      for d, suffix in enumerate(("", "_reverse")[:dirs]):
        out, h = self._run(x, h0[layer * dirs + d], layer, suffix, reverse=d == 1)
        outs.append(out); hs.append(h)
      x = outs[0] if dirs == 1 else Tensor.cat(outs, -1)
      if self.dropout > 0 and self.training and layer < self.num_layers - 1: x = x.dropout(self.dropout)
    h_n = Tensor.stack(hs, 0)
    if unbatched: return x.squeeze(1), h_n.squeeze(1)
    return (x.transpose(0, 1) if self.batch_first else x), h_n

  def _run(self, x: Tensor, h: Tensor, layer: int, suffix: str, reverse: bool):
    w_ih, w_hh = getattr(self, f"weight_ih_l{layer}{suffix}"), getattr(self, f"weight_hh_l{layer}{suffix}")
    b_ih, b_hh = (getattr(self, f"bias_ih_l{layer}{suffix}"), getattr(self, f"bias_hh_l{layer}{suffix}")) if self.bias else (None, None)
    xw = x.linear(w_ih, b_ih)                                  # input projections of every step in one matmul
    outs = [None] * x.shape[0]
    for t in (reversed(range(x.shape[0])) if reverse else range(x.shape[0])):
      h = self._step(xw[t], h, w_hh, b_hh)
      outs[t] = h
    return Tensor.stack(outs, 0), h

  def extra_repr(self):
    """The settings repr shows, formatted as torch's."""
    return recurrent_repr(self)


class GRU(_RecurrentBase):
  """A multi-layer GRU, as torch.nn.GRU: gates (r, z, n) stacked in weight_ih_l{k} (3H, in) and weight_hh_l{k} (3H, H);
  n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h. See _RecurrentBase for shapes. No packed sequences."""
  _gates = 3
  def _step(self, xw, h, w_hh, b_hh): return _gru_step(xw, h, w_hh, b_hh, self.hidden_size)


class RNN(_RecurrentBase):
  """A multi-layer Elman RNN, as torch.nn.RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh), nonlinearity 'tanh' or 'relu'."""
  _gates = 1
  def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh", bias: bool = True,
               batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
    if nonlinearity not in ("tanh", "relu"): raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
    self.nonlinearity = nonlinearity
  def _step(self, xw, h, w_hh, b_hh): return _rnn_step(xw, h, w_hh, b_hh, self.nonlinearity == "relu")


class _Cell(Module):
  """RNNCell/GRUCell/LSTMCell (torch's RNNCellBase): weight_ih (G*H, in), weight_hh (G*H, H), bias_ih, bias_hh ~
  U(-1/sqrt(H), 1/sqrt(H)); input (B, in) or unbatched (in,)."""
  _gates = 1
  def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
    super().__init__()
    self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
    G, bound = self._gates, 1 / math.sqrt(hidden_size)
    self.weight_ih = uniform_param(G * hidden_size, input_size, bound=bound, dtype=dtype, device=device)
    self.weight_hh = uniform_param(G * hidden_size, hidden_size, bound=bound, dtype=dtype, device=device)
    self.register_parameter("bias_ih", uniform_param(G * hidden_size, bound=bound, dtype=dtype, device=device) if bias else None)
    self.register_parameter("bias_hh", uniform_param(G * hidden_size, bound=bound, dtype=dtype, device=device) if bias else None)

  def _prepare(self, x: Tensor, hx):
    if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
      raise ValueError(f"{type(self).__name__}: expected input (B, {self.input_size}) or ({self.input_size},), got {x.shape}")
    x1 = x.unsqueeze(0) if x.ndim == 1 else x
    zeros = Tensor.zeros(x1.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
    return x1, zeros, x.ndim == 1

  def extra_repr(self):
    """As torch's."""
    s = f"{self.input_size}, {self.hidden_size}"
    if self.bias is not True: s += f", bias={self.bias}"
    if getattr(self, "nonlinearity", "tanh") != "tanh": s += f", nonlinearity={self.nonlinearity}"
    return s


class RNNCell(_Cell):
  """torch.nn.RNNCell: one step h' = act(W_ih x + b_ih + W_hh h + b_hh)."""
  _gates = 1
  def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", device=None, dtype=None):
    super().__init__(input_size, hidden_size, bias, device, dtype)
    self.nonlinearity = nonlinearity
  def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
    """h' for input (B, in) and hx (B, H) (zeros when None)."""
    x, zeros, unbatched = self._prepare(input, hx)
    h = zeros if hx is None else (hx.unsqueeze(0) if unbatched else hx)
    out = _rnn_step(x.linear(self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh, self.nonlinearity == "relu")
    return out.squeeze(0) if unbatched else out


class GRUCell(_Cell):
  """torch.nn.GRUCell: one GRU step (gates r, z, n as torch.nn.GRU)."""
  _gates = 3
  def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
    """h' for input (B, in) and hx (B, H) (zeros when None)."""
    x, zeros, unbatched = self._prepare(input, hx)
    h = zeros if hx is None else (hx.unsqueeze(0) if unbatched else hx)
    out = _gru_step(x.linear(self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh, self.hidden_size)
    return out.squeeze(0) if unbatched else out


class LSTMCell(_Cell):
  """torch.nn.LSTMCell: one LSTM step, gates (i, f, g, o); forward(input, (h, c)) -> (h', c')."""
  _gates = 4
  def forward(self, input: Tensor, hx=None):
    """(h', c') for input (B, in) and hx = (h, c), each (B, H) (zeros when None)."""
    x, zeros, unbatched = self._prepare(input, hx)
    h, c = (zeros, zeros) if hx is None else ((hx[0].unsqueeze(0), hx[1].unsqueeze(0)) if unbatched else hx)
    H = self.hidden_size
    gates = x.linear(self.weight_ih, self.bias_ih) + h.linear(self.weight_hh, self.bias_hh)
    i, f, g, o = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid(), gates[:, 2 * H:3 * H].tanh(), gates[:, 3 * H:].sigmoid()
    c = f * c + i * g
    h = o * c.tanh()
    return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


__all__ = ["GRU", "RNN", "RNNCell", "GRUCell", "LSTMCell"]
