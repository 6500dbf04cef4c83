"""Normalisation layers beyond norm.py's: GroupNorm, InstanceNorm1d/2d/3d, LocalResponseNorm and BatchNorm3d,
with torch's parameters, buffers, defaults and repr. The forwards are lazygrad.nn.functional calls."""
from __future__ import annotations
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module, realize_with_next_step
from lazygrad.nn.init import const_param
from lazygrad.nn.norm import _BatchNorm
from lazygrad.nn import functional as F


class GroupNorm(Module):
  """torch.nn.GroupNorm: (N, C, *) normalised per group of C/num_groups channels; weight (C,) = 1 and bias (C,) = 0 when affine
  (and bias=True)."""
  def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None, dtype=None, *, bias: bool = True):
    super().__init__()
    if num_channels % num_groups: raise ValueError(f"GroupNorm: num_channels {num_channels} must be divisible by num_groups {num_groups}")
    self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
    self.register_parameter("weight", const_param(num_channels, value=1.0, dtype=dtype, device=device) if affine else None)
    self.register_parameter("bias", const_param(num_channels, value=0.0, dtype=dtype, device=device) if affine and bias else None)
  def forward(self, x: Tensor) -> Tensor:
    """Normalise x (N, C, *)."""
    return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
  def extra_repr(self):
    """As torch's."""
    return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.bias is not None}"


class _InstanceNorm(Module):
  """torch's _InstanceNorm: each (sample, channel) normalised over its spatial dims; affine=False and
  track_running_stats=False by default, as torch; with running stats, eval mode uses them."""
  _spatial = 1
  def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False, track_running_stats: bool = False,
               device=None, dtype=None, *, bias: bool = True):
    super().__init__()
    self.num_features, self.eps, self.momentum, self.affine, self.track_running_stats = num_features, eps, momentum, affine, track_running_stats
    self.register_parameter("weight", const_param(num_features, value=1.0, dtype=dtype, device=device) if affine else None)
    self.register_parameter("bias", const_param(num_features, value=0.0, dtype=dtype, device=device) if affine and bias else None)
    if track_running_stats:
      self.register_buffer("running_mean", Tensor.zeros(num_features, dtype=dtype, device=device).contiguous())
      self.register_buffer("running_var", Tensor.ones(num_features, dtype=dtype, device=device).contiguous())
      self.register_buffer("num_batches_tracked", Tensor.zeros((), dtype="int64", device=device).contiguous())
    else:
      for name in ("running_mean", "running_var", "num_batches_tracked"): self.register_buffer(name, None)
  _optional_buffers = ("num_batches_tracked",)

  def forward(self, x: Tensor) -> Tensor:
    """Normalise x: (N, C, *spatial) or unbatched (C, *spatial)."""
    name = type(self).__name__
    if x.ndim not in (self._spatial + 1, self._spatial + 2): raise ValueError(f"{name}: expected a {self._spatial + 2}-D input, got {x.shape}")
    unbatched = x.ndim == self._spatial + 1
    if unbatched: x = x.unsqueeze(0)
    use_input_stats = self.training or not self.track_running_stats
    out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats, self.momentum, self.eps)
    if self.training and self.track_running_stats: realize_with_next_step(self.running_mean, self.running_var)
    return out.squeeze(0) if unbatched else out
  def extra_repr(self):
    """As torch's."""
    return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
  """torch.nn.InstanceNorm1d on (N, C, L) or (C, L)."""
  _spatial = 1
class InstanceNorm2d(_InstanceNorm):
  """torch.nn.InstanceNorm2d on (N, C, H, W) or (C, H, W)."""
  _spatial = 2
class InstanceNorm3d(_InstanceNorm):
  """torch.nn.InstanceNorm3d on (N, C, D, H, W) or (C, D, H, W)."""
  _spatial = 3


class LocalResponseNorm(Module):
  """torch.nn.LocalResponseNorm across neighbouring channels."""
  def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
    super().__init__()
    self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
  def forward(self, x: Tensor) -> Tensor:
    """Normalise x (N, C, *)."""
    return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
  def extra_repr(self):
    """As torch's."""
    return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class BatchNorm3d(_BatchNorm):
  """Batch normalisation over (N, C, D, H, W) inputs, as torch.nn.BatchNorm3d (see norm._BatchNorm)."""
  _input_dims = (5,)


__all__ = ["GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "BatchNorm3d"]
