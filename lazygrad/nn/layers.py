"""Layers with weights (Linear, Conv2d, Embedding) and the stateless ones (activations,
dropout, pooling, Flatten). Each forward is one Tensor method; init and names follow torch."""
from __future__ import annotations
import math
from typing import Optional
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.init import uniform_param, normal_param
from lazygrad.nn import functional as F


def _pair(x, name: str, layer: str) -> tuple[int, int]:
  t = tuple(x) if isinstance(x, (tuple, list)) else (x, x)
  if len(t) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in t):
    raise ValueError(f"{layer}: {name} must be an int or a pair of ints, got {x!r}")
  return t


def _positive(layer: str, **sizes) -> None:
  for name, v in sizes.items():
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0: raise ValueError(f"{layer}: {name} must be a positive int, got {v!r}")


class Identity(Module):
  """Returns its input unchanged (any shape); ignores its arguments, as torch.nn.Identity."""
  def __init__(self, *args, **kwargs): super().__init__()
  def forward(self, x: Tensor) -> Tensor:
    """Apply Identity to the input (shapes and torch equivalence: the class docstring)."""
    return x


class Linear(Module):
  """y = x @ W.T + b over the last dim, as torch.nn.Linear: x (..., in_features) -> (..., out_features).

  weight (out_features, in_features) and bias (out_features,) ~ U(-1/sqrt(in_features),
  1/sqrt(in_features)) (torch's kaiming_uniform(a=sqrt(5)) and bias init). With a bias the
  forward is one fused matmul+bias kernel (`mm_bias_...`)."""
  def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
    super().__init__()
    if not isinstance(in_features, int) or in_features < 0 or not isinstance(out_features, int) or out_features < 0:
      raise ValueError(f"Linear: in_features and out_features must be non-negative ints, got {in_features!r}, {out_features!r}")
    self.in_features, self.out_features = in_features, out_features
    bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
    self.weight = uniform_param(out_features, in_features, bound=bound, dtype=dtype, device=device)
    self.bias = uniform_param(out_features, bound=bound, dtype=dtype, device=device) if bias else None
    if not bias: self.register_parameter("bias", None)

  def forward(self, x: Tensor) -> Tensor:
    """Apply Linear to the input (shapes and torch equivalence: the class docstring)."""
    return x.linear(self.weight, self.bias)
  def extra_repr(self):
    """The settings repr(Linear) shows, formatted as torch's."""
    return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
  """2-D convolution (cross-correlation) as torch.nn.Conv2d: (N, C_in, H, W) -> (N, C_out, H', W')
  (batched input only: torch also takes an unbatched (C_in, H, W)). weight (C_out, C_in/groups, kH, kW) and bias (C_out,) ~
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in/groups*kH*kW, as torch. stride, padding
  (ints or 'same'/'valid'), dilation and groups as torch; only padding_mode='zeros'."""
  def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
               bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
    super().__init__()
    _positive("Conv2d", in_channels=in_channels, out_channels=out_channels, groups=groups)
    if in_channels % groups or out_channels % groups:
      raise ValueError(f"Conv2d: groups={groups} must divide in_channels {in_channels} and out_channels {out_channels}")
    if padding_mode != "zeros": raise ValueError(f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
    self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
    self.kernel_size, self.stride, self.dilation = _pair(kernel_size, "kernel_size", "Conv2d"), _pair(stride, "stride", "Conv2d"), \
      _pair(dilation, "dilation", "Conv2d")
    self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", "Conv2d")
    if isinstance(padding, str) and padding not in ("same", "valid"):
      raise ValueError(f"Conv2d: padding must be 'same', 'valid' or ints, got {padding!r}")
    fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
    bound = 1 / math.sqrt(fan_in)
    self.weight = uniform_param(out_channels, in_channels // groups, *self.kernel_size, bound=bound, dtype=dtype, device=device)
    self.bias = uniform_param(out_channels, bound=bound, dtype=dtype, device=device) if bias else None
    if not bias: self.register_parameter("bias", None)

  def forward(self, x: Tensor) -> Tensor:
    """Apply Conv2d to the input (shapes and torch equivalence: the class docstring)."""
    return x.conv2d(self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
  def extra_repr(self):
    """The settings repr(Conv2d) shows, formatted as torch's."""
    s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
    if self.padding != (0, 0): s += f", padding={self.padding}"
    if self.dilation != (1, 1): s += f", dilation={self.dilation}"
    if self.groups != 1: s += f", groups={self.groups}"
    return s + (", bias=False" if self.bias is None else "")


class Embedding(Module):
  """A lookup table, as torch.nn.Embedding: integer ids of any shape (...) -> (..., embedding_dim).
  weight (num_embeddings, embedding_dim) ~ N(0, 1); the padding_idx row starts at zero and
  gets no gradient, as torch. No max_norm, scale_grad_by_freq or sparse gradients."""
  def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None, _weight: Optional[Tensor] = None,
               device=None, dtype=None):
    super().__init__()
    _positive("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
    if padding_idx is not None:
      if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"Embedding: padding_idx {padding_idx} must be within num_embeddings {num_embeddings}")
      padding_idx %= num_embeddings
    self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
    if _weight is not None:
      if _weight.shape != (num_embeddings, embedding_dim):
        raise ValueError(f"Embedding: _weight must be {(num_embeddings, embedding_dim)}, got {_weight.shape}")
      w = _weight.detach().requires_grad_()
    else:
      w = normal_param(num_embeddings, embedding_dim, dtype=dtype, device=device)
      if padding_idx is not None:
        keep = Tensor.arange(num_embeddings, device=w.device).reshape(num_embeddings, 1) != padding_idx
        w = keep.where(w.detach(), 0).cast(w.dtype).detach().requires_grad_()
    self.weight = w

  def forward(self, idx: Tensor) -> Tensor:
    """Apply Embedding to the input (shapes and torch equivalence: the class docstring)."""
    out = idx.embedding(self.weight)
    if self.padding_idx is None: return out
    # rows looked up by padding_idx pass their value but no gradient
    return (idx == self.padding_idx).unsqueeze(-1).where(out.detach(), out)
  def extra_repr(self):
    """The settings repr(Embedding) shows, formatted as torch's."""
    return f"{self.num_embeddings}, {self.embedding_dim}" + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class Dropout(Module):
  """Zero each element with probability p in training mode and scale the rest by 1/(1-p);
  the identity in eval mode (any shape), as torch.nn.Dropout. The mask comes from lazygrad's
  counter-based generator (Philox), so it is fused into the kernel and differs from torch's
  numbers. `inplace` is accepted and ignored (every op makes a new lazy value)."""
  def __init__(self, p: float = 0.5, inplace: bool = False):
    super().__init__()
    if not 0 <= p <= 1: raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
    self.p, self.inplace = p, inplace
  def forward(self, x: Tensor) -> Tensor:
    """Apply Dropout to the input (shapes and torch equivalence: the class docstring)."""
    return x.dropout(self.p, self.training)
  def extra_repr(self):
    """The settings repr(Dropout) shows, formatted as torch's."""
    return f"p={self.p}, inplace={self.inplace}"


# ---- activations
class ReLU(Module):
  """max(x, 0) elementwise, as torch.nn.ReLU (`inplace` is accepted and ignored)."""
  def __init__(self, inplace: bool = False): super().__init__()
  def forward(self, x: Tensor) -> Tensor:
    """Apply ReLU to the input (shapes and torch equivalence: the class docstring)."""
    return x.relu()

class GELU(Module):
  """x * Phi(x) elementwise, as torch.nn.GELU; approximate='tanh' is the tanh formula (GPT-2's)."""
  def __init__(self, approximate: str = "none"):
    super().__init__()
    if approximate not in ("none", "tanh"): raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
    self.approximate = approximate
  def forward(self, x: Tensor) -> Tensor:
    """Apply GELU to the input (shapes and torch equivalence: the class docstring)."""
    return x.gelu(approximate=self.approximate)
  def extra_repr(self):
    """The settings repr(GELU) shows, formatted as torch's."""
    return f"approximate={self.approximate!r}"

class SiLU(Module):
  """x * sigmoid(x) elementwise, as torch.nn.SiLU (`inplace` is accepted and ignored)."""
  def __init__(self, inplace: bool = False): super().__init__()
  def forward(self, x: Tensor) -> Tensor:
    """Apply SiLU to the input (shapes and torch equivalence: the class docstring)."""
    return x.silu()

class Sigmoid(Module):
  """1 / (1 + exp(-x)) elementwise, as torch.nn.Sigmoid."""
  def forward(self, x: Tensor) -> Tensor:
    """Apply Sigmoid to the input (shapes and torch equivalence: the class docstring)."""
    return x.sigmoid()

class Tanh(Module):
  """tanh(x) elementwise, as torch.nn.Tanh."""
  def forward(self, x: Tensor) -> Tensor:
    """Apply Tanh to the input (shapes and torch equivalence: the class docstring)."""
    return x.tanh()

class LeakyReLU(Module):
  """x if x >= 0 else negative_slope * x, as torch.nn.LeakyReLU (`inplace` is accepted and ignored)."""
  def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
    super().__init__()
    self.negative_slope = negative_slope
  def forward(self, x: Tensor) -> Tensor:
    """Apply LeakyReLU to the input (shapes and torch equivalence: the class docstring)."""
    return x.leaky_relu(self.negative_slope)
  def extra_repr(self):
    """The settings repr(LeakyReLU) shows, formatted as torch's."""
    return f"negative_slope={self.negative_slope}"

class Softmax(Module):
  """softmax along `dim` (default -1; torch's default None is not accepted), as torch.nn.Softmax: one fused kernel."""
  def __init__(self, dim: int = -1):
    super().__init__()
    self.dim = dim
  def forward(self, x: Tensor) -> Tensor:
    """Apply Softmax to the input (shapes and torch equivalence: the class docstring)."""
    return x.softmax(self.dim)
  def extra_repr(self):
    """The settings repr(Softmax) shows, formatted as torch's."""
    return f"dim={self.dim}"


# ---- pooling and reshaping
class MaxPool2d(Module):
  """Max over kernel_size windows, as torch.nn.MaxPool2d: (N, C, H, W) or (C, H, W) -> (..., H', W');
  stride defaults to kernel_size; padding pads with -inf; ceil_mode and return_indices as torch
  (those two go through lazygrad.nn.functional.max_pool2d). Without return_indices the gradient
  goes to every element equal to the window's max, shared equally between ties (torch picks one)."""
  def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False, ceil_mode: bool = False):
    super().__init__()
    self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
    self.return_indices, self.ceil_mode = return_indices, ceil_mode
  def forward(self, x: Tensor) -> Tensor:
    """Apply MaxPool2d to the input (shapes and torch equivalence: the class docstring)."""
    if self.return_indices or self.ceil_mode:
      return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices)
    return x.max_pool2d(self.kernel_size, self.stride, self.padding, self.dilation)
  def extra_repr(self):
    """The settings repr(MaxPool2d) shows, formatted as torch's."""
    stride = self.kernel_size if self.stride is None else self.stride
    return f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}"

class AvgPool2d(Module):
  """Mean over kernel_size windows, as torch.nn.AvgPool2d: (N, C, H, W) or (C, H, W) -> (..., H', W');
  stride defaults to kernel_size; count_include_pad, ceil_mode and divisor_override as torch (the latter two
  through lazygrad.nn.functional.avg_pool2d)."""
  def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override=None):
    super().__init__()
    self.kernel_size, self.stride, self.padding, self.count_include_pad = kernel_size, stride, padding, count_include_pad
    self.ceil_mode, self.divisor_override = ceil_mode, divisor_override
  def forward(self, x: Tensor) -> Tensor:
    """Apply AvgPool2d to the input (shapes and torch equivalence: the class docstring)."""
    if self.ceil_mode or self.divisor_override:
      return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad, self.divisor_override)
    return x.avg_pool2d(self.kernel_size, self.stride, self.padding, count_include_pad=self.count_include_pad)
  def extra_repr(self):
    """The settings repr(AvgPool2d) shows, formatted as torch's."""
    return f"kernel_size={self.kernel_size}, stride={self.kernel_size if self.stride is None else self.stride}, padding={self.padding}"

class AdaptiveAvgPool2d(Module):
  """Mean pooling to a fixed output_size (an int or a pair of ints; torch also takes None for a kept dim), as
  torch.nn.AdaptiveAvgPool2d: (..., H, W) -> (..., *output_size), torch's windows (floor(i*H/out) to ceil((i+1)*H/out))."""
  def __init__(self, output_size):
    super().__init__()
    self.output_size = output_size
  def forward(self, x: Tensor) -> Tensor:
    """Apply AdaptiveAvgPool2d to the input (shapes and torch equivalence: the class docstring)."""
    return x.adaptive_avg_pool2d(self.output_size)
  def extra_repr(self):
    """The settings repr(AdaptiveAvgPool2d) shows, formatted as torch's."""
    return f"output_size={self.output_size}"

class Flatten(Module):
  """Merge dims start_dim..end_dim into one, as torch.nn.Flatten (a view, no copy): (N, C, H, W) -> (N, C*H*W) by default."""
  def __init__(self, start_dim: int = 1, end_dim: int = -1):
    super().__init__()
    self.start_dim, self.end_dim = start_dim, end_dim
  def forward(self, x: Tensor) -> Tensor:
    """Apply Flatten to the input (shapes and torch equivalence: the class docstring)."""
    return x.flatten(self.start_dim, self.end_dim)
  def extra_repr(self):
    """The settings repr(Flatten) shows, formatted as torch's."""
    return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
