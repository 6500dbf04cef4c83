"""Normalisation layers: BatchNorm1d/2d (running statistics as buffers), LayerNorm, RMSNorm."""
from __future__ import annotations
from typing import Optional
from lazygrad.dtype import dtypes
from lazygrad.tensor import Tensor, no_grad
from lazygrad.nn.module import Module, realize_with_next_step
from lazygrad.nn.init import const_param


class _BatchNorm(Module):
  """Shared by BatchNorm1d/2d (torch's _BatchNorm): normalise each channel (dim 1) with the
  batch's mean and biased variance in training mode, the running statistics in eval mode.
  weight (C,) starts at 1, bias (C,) at 0; buffers running_mean, running_var (updated with
  the unbiased variance and `momentum`; momentum=None: a cumulative average) and
  num_batches_tracked, as torch. The running-stat updates are lazy and are realized with
  the next optimizer step."""
  _input_dims: tuple[int, ...] = ()
  # a checkpoint without num_batches_tracked (older torch, other frameworks) still loads strictly
  _optional_buffers = ("num_batches_tracked",)

  def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
               track_running_stats: bool = True, device=None, dtype=None):
    super().__init__()
    if not isinstance(num_features, int) or num_features <= 0:
      raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}")
    self.num_features, self.eps, self.momentum = num_features, eps, momentum
    self.affine, self.track_running_stats = affine, track_running_stats
    self.register_parameter("weight", const_param(num_features, value=1.0, dtype=dtype, device=device) if affine else None)
    self.register_parameter("bias", const_param(num_features, value=0.0, dtype=dtype, device=device) if affine else None)
    if track_running_stats:
      self.register_buffer("running_mean", Tensor.zeros(num_features, dtype=dtype, device=device).contiguous())
      self.register_buffer("running_var", Tensor.ones(num_features, dtype=dtype, device=device).contiguous())
      self.register_buffer("num_batches_tracked", Tensor.zeros((), dtype=dtypes.int64, device=device).contiguous())
    else:
      for name in ("running_mean", "running_var", "num_batches_tracked"): self.register_buffer(name, None)

  def reset_running_stats(self) -> None:
    """Set running_mean to 0, running_var to 1 and num_batches_tracked to 0 (lazily)."""
    if not self.track_running_stats: return
    with no_grad():
      self.running_mean.assign(0.0); self.running_var.assign(1.0); self.num_batches_tracked.assign(0)

  def forward(self, x: Tensor) -> Tensor:
    """Normalise x (N, C, ...) per channel; in training mode also queue the running-stat update."""
    name = type(self).__name__
    if x.ndim not in self._input_dims:
      raise ValueError(f"{name}: expected a {' or '.join(f'{d}-D' for d in self._input_dims)} input, got shape {x.shape}")
    if x.shape[1] != self.num_features:
      raise ValueError(f"{name}: input {x.shape} has {x.shape[1]} channels, the layer was made for {self.num_features}")
    use_batch_stats = self.training or self.running_mean is None
    momentum = self.momentum
    if self.training and self.track_running_stats:
      with no_grad():
        self.num_batches_tracked.assign(self.num_batches_tracked + 1)
        # momentum=None: a cumulative average, factor 1/num_batches_tracked (lazy: no realize here)
        if momentum is None: momentum = self.num_batches_tracked.float().reciprocal()
    update = self.training and self.track_running_stats
    out = x.batch_norm(self.running_mean if update or not use_batch_stats else None,
                       self.running_var if update or not use_batch_stats else None,
                       self.weight, self.bias, use_batch_stats, 0.0 if momentum is None else momentum, self.eps)
    if update: realize_with_next_step(self.running_mean, self.running_var, self.num_batches_tracked)
    return out

  def extra_repr(self):
    """The settings repr(_BatchNorm) shows, formatted as torch's."""
    return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, track_running_stats={self.track_running_stats}"


class BatchNorm1d(_BatchNorm):
  """Batch normalisation over (N, C) or (N, C, L) inputs, as torch.nn.BatchNorm1d (see _BatchNorm)."""
  _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
  """Batch normalisation over (N, C, H, W) inputs (statistics over N, H, W), as torch.nn.BatchNorm2d (see _BatchNorm)."""
  _input_dims = (4,)


class LayerNorm(Module):
  """Normalise over the last len(normalized_shape) dims (mean and biased variance), then
  scale by weight (starts at 1) and add bias (starts at 0), as torch.nn.LayerNorm:
  x (..., *normalized_shape) -> the same shape. One fused kernel forward."""
  def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True, device=None, dtype=None):
    super().__init__()
    self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    self.eps, self.elementwise_affine, self._bias = eps, elementwise_affine, bias
    self.register_parameter("weight", const_param(*self.normalized_shape, value=1.0, dtype=dtype, device=device) if elementwise_affine else None)
    self.register_parameter("bias", const_param(*self.normalized_shape, value=0.0, dtype=dtype, device=device)
                            if elementwise_affine and bias else None)

  def forward(self, x: Tensor) -> Tensor:
    """Apply LayerNorm to the input (shapes and torch equivalence: the class docstring)."""
    return x.layer_norm(self.normalized_shape, self.weight, self.bias, self.eps)
  def extra_repr(self):
    """The settings repr(LayerNorm) shows, formatted as torch's."""
    return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, bias={self._bias}"


class RMSNorm(Module):
  """x / sqrt(mean(x^2 over the last len(normalized_shape) dims) + eps) * weight (starts at 1),
  as torch.nn.RMSNorm: same shape out. eps=None uses float32's machine epsilon (torch uses
  the input dtype's)."""
  def __init__(self, normalized_shape, eps: Optional[float] = None, elementwise_affine: bool = True, device=None, dtype=None):
    super().__init__()
    self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    self.eps, self.elementwise_affine = eps, elementwise_affine
    self.register_parameter("weight", const_param(*self.normalized_shape, value=1.0, dtype=dtype, device=device) if elementwise_affine else None)

  def forward(self, x: Tensor) -> Tensor:
    """Apply RMSNorm to the input (shapes and torch equivalence: the class docstring)."""
    return x.rms_norm(self.normalized_shape, self.weight, self.eps)
  def extra_repr(self):
    """The settings repr(RMSNorm) shows, formatted as torch's."""
    return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
