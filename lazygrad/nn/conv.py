"""Convolution layers beyond Conv2d: Conv1d, Conv3d and the transposed convolutions, with torch's
parameters, init, padding_mode and repr. The forwards are lazygrad.nn.functional calls."""
from __future__ import annotations
import math
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.init import uniform_param
from lazygrad.nn import functional as F
from lazygrad.nn.functional_spatial import ntuple


class _ConvNd(Module):
  """Shared by the convolutions (torch's _ConvNd): weight (C_out, C_in/groups, *k), or (C_in, C_out/groups, *k) when
  transposed, and bias (C_out,), ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = weight.shape[1] * prod(k), as torch.
  padding_mode 'zeros', 'reflect', 'replicate' or 'circular' (the latter pad with F.pad, then convolve unpadded)."""
  _nd, _transposed = 1, False

  def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
               bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, output_padding=0):
    super().__init__()
    name, nd = type(self).__name__, self._nd
    for arg, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
      if not isinstance(v, int) or v <= 0: raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
    if in_channels % groups or out_channels % groups:
      raise ValueError(f"{name}: groups={groups} must divide in_channels {in_channels} and out_channels {out_channels}")
    if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
      raise ValueError(f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got {padding_mode!r}")
    if isinstance(padding, str) and (padding not in ("same", "valid") or self._transposed):
      raise ValueError(f"{name}: padding must be ints{'' if self._transposed else ', same or valid'}, got {padding!r}")
    if self._transposed and padding_mode != "zeros": raise ValueError(f"{name}: only padding_mode='zeros' is supported")
    self.in_channels, self.out_channels, self.groups, self.padding_mode = in_channels, out_channels, groups, padding_mode
    self.kernel_size, self.stride = ntuple(kernel_size, nd, "kernel_size", name), ntuple(stride, nd, "stride", name)
    self.dilation, self.output_padding = ntuple(dilation, nd, "dilation", name), ntuple(output_padding, nd, "output_padding", name)
    self.padding = padding if isinstance(padding, str) else ntuple(padding, nd, "padding", name)
    shape = (in_channels, out_channels // groups) if self._transposed else (out_channels, in_channels // groups)
    bound = 1 / math.sqrt(shape[1] * math.prod(self.kernel_size))
    self.weight = uniform_param(*shape, *self.kernel_size, bound=bound, dtype=dtype, device=device)
    self.register_parameter("bias", uniform_param(out_channels, bound=bound, dtype=dtype, device=device) if bias else None)

  def _mode_padded(self, x: Tensor):
    """(input, padding for the conv): non-zero padding modes pad here with F.pad and convolve with padding 0."""
    if self.padding_mode == "zeros" or self.padding == "valid": return x, self.padding
    if self.padding == "same":
      totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
      pads = [v for t in reversed(totals) for v in (t // 2, t - t // 2)]
    else: pads = [v for p in reversed(self.padding) for v in (p, p)]
    return F.pad(x, pads, mode=self.padding_mode), 0

  def forward(self, x: Tensor) -> Tensor:
    """Apply the convolution (shapes and torch equivalence: the class docstring); padding_mode pads first."""
    x, p = self._mode_padded(x)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[self._nd]
    return fn(x, self.weight, self.bias, self.stride, p, self.dilation, self.groups)

  def extra_repr(self):
    """The settings repr shows, formatted as torch's."""
    nd = self._nd
    s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
    if self.padding != (0,) * nd: s += f", padding={self.padding}"
    if self.dilation != (1,) * nd: s += f", dilation={self.dilation}"
    if self.output_padding != (0,) * nd: s += f", output_padding={self.output_padding}"
    if self.groups != 1: s += f", groups={self.groups}"
    if self.bias is None: s += ", bias=False"
    if self.padding_mode != "zeros": s += f", padding_mode={self.padding_mode}"
    return s


class Conv1d(_ConvNd):
  """1-D convolution as torch.nn.Conv1d: (N, C_in, L) -> (N, C_out, L'); see _ConvNd."""
  _nd = 1
  def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
               bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
    super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype)


class Conv3d(_ConvNd):
  """3-D convolution as torch.nn.Conv3d: (N, C_in, D, H, W) -> (N, C_out, D', H', W'); see _ConvNd."""
  _nd = 3
  def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
               bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
    super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype)


class _ConvTransposeNd(_ConvNd):
  """Shared by the transposed convolutions: weight (C_in, C_out/groups, *k); forward(x, output_size=None) as torch."""
  _transposed = True
  def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
               bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None):
    super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype,
                     output_padding)

  def _output_padding(self, x: Tensor, output_size) -> tuple:
    if output_size is None: return self.output_padding
    want = tuple(output_size)[-self._nd:]
    base = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
            zip(x.shape[-self._nd:], self.stride, self.padding, self.dilation, self.kernel_size)]
    extra = tuple(w - b for w, b in zip(want, base))
    if any(not 0 <= e < max(s, d) for e, s, d in zip(extra, self.stride, self.dilation)):
      raise ValueError(f"{type(self).__name__}: output_size {want} is not reachable from input {x.shape} (sizes from {tuple(base)})")
    return extra

  def forward(self, x: Tensor, output_size=None) -> Tensor:
    """Apply the transposed convolution (output_size picks output_padding, as torch)."""
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[self._nd]
    return fn(x, self.weight, self.bias, self.stride, self.padding, self._output_padding(x, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
  """torch.nn.ConvTranspose1d: (N, C_in, L) -> (N, C_out, (L-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1)."""
  _nd = 1


class ConvTranspose2d(_ConvTransposeNd):
  """torch.nn.ConvTranspose2d: (N, C_in, H, W) -> (N, C_out, H', W'), the gradient of Conv2d as a layer."""
  _nd = 2


class ConvTranspose3d(_ConvTransposeNd):
  """torch.nn.ConvTranspose3d: (N, C_in, D, H, W) -> (N, C_out, D', H', W')."""
  _nd = 3


__all__ = ["Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
