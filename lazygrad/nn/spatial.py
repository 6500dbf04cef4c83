"""Stateless spatial modules of torch.nn beyond layers.py's: 1-D/3-D and adaptive-max pooling, LPPool,
Upsample, padding layers, Fold/Unfold, pixel and channel shuffles, Unflatten, channel dropout,
distances and Bilinear. Each forward is a lazygrad.nn.functional call with the settings given."""
from __future__ import annotations
import math
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.init import uniform_param
from lazygrad.nn import functional as F
from lazygrad.nn.functional_spatial import ntuple


class _MaxPoolNd(Module):
  """torch's _MaxPoolNd: kernel_size, stride (default kernel_size), padding, dilation, return_indices, ceil_mode."""
  _fn = "max_pool1d"
  def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False, ceil_mode: bool = False):
    super().__init__()
    self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
    self.padding, self.dilation, self.return_indices, self.ceil_mode = padding, dilation, return_indices, ceil_mode
  def forward(self, x: Tensor):
    """Pool x (values, or (values, indices) with return_indices)."""
    return getattr(F, self._fn)(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices)
  def extra_repr(self):
    """As torch's."""
    return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class MaxPool1d(_MaxPoolNd):
  """torch.nn.MaxPool1d on (N, C, L) or (C, L)."""
  _fn = "max_pool1d"
class MaxPool3d(_MaxPoolNd):
  """torch.nn.MaxPool3d on (N, C, D, H, W) or (C, D, H, W)."""
  _fn = "max_pool3d"


class AvgPool1d(Module):
  """torch.nn.AvgPool1d on (N, C, L) or (C, L), with ceil_mode and count_include_pad."""
  def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
    super().__init__()
    self.kernel_size, self.stride = ntuple(kernel_size, 1, "kernel_size", "AvgPool1d"), ntuple(
      stride if stride is not None else kernel_size, 1, "stride", "AvgPool1d")
    self.padding, self.ceil_mode, self.count_include_pad = ntuple(padding, 1, "padding", "AvgPool1d"), ceil_mode, count_include_pad
  def forward(self, x: Tensor) -> Tensor:
    """Average-pool x."""
    return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)
  def extra_repr(self):
    """As torch's."""
    return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool3d(Module):
  """torch.nn.AvgPool3d on (N, C, D, H, W) or (C, D, H, W)."""
  def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override=None):
    super().__init__()
    self.kernel_size, self.stride, self.padding = kernel_size, stride if stride is not None else kernel_size, padding
    self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override
  def forward(self, x: Tensor) -> Tensor:
    """Average-pool x."""
    return F.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad, self.divisor_override)
  def extra_repr(self):
    """As torch's."""
    return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _Adaptive(Module):
  """Adaptive pooling to output_size (torch's windows)."""
  _fn = "adaptive_avg_pool1d"
  def __init__(self, output_size, return_indices: bool = False):
    super().__init__()
    self.output_size, self.return_indices = output_size, return_indices
  def forward(self, x: Tensor):
    """Pool x to output_size."""
    fn = getattr(F, self._fn)
    return fn(x, self.output_size, self.return_indices) if "max" in self._fn else fn(x, self.output_size)
  def extra_repr(self):
    """As torch's."""
    return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_Adaptive):
  """torch.nn.AdaptiveAvgPool1d."""
  _fn = "adaptive_avg_pool1d"
  def __init__(self, output_size): super().__init__(output_size)
class AdaptiveAvgPool3d(_Adaptive):
  """torch.nn.AdaptiveAvgPool3d."""
  _fn = "adaptive_avg_pool3d"
  def __init__(self, output_size): super().__init__(output_size)
class AdaptiveMaxPool1d(_Adaptive):
  """torch.nn.AdaptiveMaxPool1d (return_indices as torch)."""
  _fn = "adaptive_max_pool1d"
class AdaptiveMaxPool2d(_Adaptive):
  """torch.nn.AdaptiveMaxPool2d (return_indices as torch)."""
  _fn = "adaptive_max_pool2d"


class AdaptiveMaxPool3d(_Adaptive):
  """torch.nn.AdaptiveMaxPool3d (return_indices as torch)."""
  _fn = "adaptive_max_pool3d"


class _MaxUnpoolNd(Module):
  """MaxUnpool1d/2d/3d: the inverse of max pooling with return_indices; forward(x, indices, output_size=None)."""
  _fn, _nd = "max_unpool2d", 2
  def __init__(self, kernel_size, stride=None, padding=0):
    super().__init__()
    name, nd = type(self).__name__, self._nd
    self.kernel_size = ntuple(kernel_size, nd, "kernel_size", name)
    self.stride = ntuple(stride if stride is not None else kernel_size, nd, "stride", name)
    self.padding = ntuple(padding, nd, "padding", name)
  def forward(self, x: Tensor, indices: Tensor, output_size=None) -> Tensor:
    """Scatter x to the positions indices gives (zeros elsewhere)."""
    return getattr(F, self._fn)(x, indices, self.kernel_size, self.stride, self.padding, output_size)
  def extra_repr(self):
    """As torch's."""
    return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
  """torch.nn.MaxUnpool1d."""
  _fn, _nd = "max_unpool1d", 1
class MaxUnpool2d(_MaxUnpoolNd):
  """torch.nn.MaxUnpool2d."""
  _fn, _nd = "max_unpool2d", 2
class MaxUnpool3d(_MaxUnpoolNd):
  """torch.nn.MaxUnpool3d."""
  _fn, _nd = "max_unpool3d", 3


class LPPool1d(Module):
  """torch.nn.LPPool1d: (sum of x^p over windows)^(1/p)."""
  _fn = "lp_pool1d"
  def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    super().__init__()
    self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode
  def forward(self, x: Tensor) -> Tensor:
    """Power-average-pool x."""
    return getattr(F, self._fn)(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)
  def extra_repr(self):
    """As torch's."""
    return f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, ceil_mode={self.ceil_mode}"


class LPPool2d(LPPool1d):
  """torch.nn.LPPool2d."""
  _fn = "lp_pool2d"


class LPPool3d(LPPool1d):
  """torch.nn.LPPool3d."""
  _fn = "lp_pool3d"


class Upsample(Module):
  """torch.nn.Upsample: F.interpolate with size or scale_factor, mode and align_corners."""
  def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None, recompute_scale_factor=None):
    super().__init__()
    self.size, self.mode, self.align_corners, self.recompute_scale_factor = size, mode, align_corners, recompute_scale_factor
    self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else scale_factor
  def forward(self, x: Tensor) -> Tensor:
    """Resize x."""
    return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners, self.recompute_scale_factor)
  def extra_repr(self):
    """As torch's."""
    info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
    return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
  """torch.nn.UpsamplingNearest2d: Upsample(mode='nearest')."""
  def __init__(self, size=None, scale_factor=None): super().__init__(size, scale_factor, "nearest")
class UpsamplingBilinear2d(Upsample):
  """torch.nn.UpsamplingBilinear2d: Upsample(mode='bilinear', align_corners=True)."""
  def __init__(self, size=None, scale_factor=None): super().__init__(size, scale_factor, "bilinear", True)


class _PadNd(Module):
  """A padding layer: F.pad(x, padding, mode, value) with padding an int (every side) or 2*n ints."""
  _n, _mode = 1, "constant"
  def __init__(self, padding, value: float = 0.0):
    super().__init__()
    self.padding = ntuple(padding, 2 * self._n, "padding", type(self).__name__)
    self.value = value
  def forward(self, x: Tensor) -> Tensor:
    """Pad x."""
    return F.pad(x, self.padding, self._mode, self.value if self._mode == "constant" else None)
  def extra_repr(self):
    """As torch's."""
    return f"padding={self.padding}, value={self.value}" if self._mode == "constant" else f"{self.padding}"


def _pad_class(name: str, n: int, mode: str, zero: bool):
  doc = f"torch.nn.{name}: pad the last {n} dim(s) in mode {mode!r}."
  if mode == "constant" and not zero:
    def init(self, padding, value: float): _PadNd.__init__(self, padding, value)
  else:
    def init(self, padding): _PadNd.__init__(self, padding)
  init.__doc__ = f"{name}(padding{'' if zero or mode != 'constant' else ', value'})."
  cls = type(name, (_PadNd,), {"_n": n, "_mode": mode, "__init__": init, "__doc__": doc, "__module__": __name__})
  if zero:
    def extra_repr(self): return f"{self.padding}"
    extra_repr.__doc__ = "As torch's: the padding alone."
    cls.extra_repr = extra_repr
  return cls


_PADS = {f"{kind}Pad{n}d": _pad_class(f"{kind}Pad{n}d", n, mode, kind == "Zero") for n in (1, 2, 3)
         for kind, mode in (("Zero", "constant"), ("Constant", "constant"), ("Reflection", "reflect"), ("Replication", "replicate"),
                            ("Circular", "circular"))}
globals().update(_PADS)


class Unflatten(Module):
  """torch.nn.Unflatten: split dim into unflattened_size (a view)."""
  def __init__(self, dim: int, unflattened_size):
    super().__init__()
    self.dim, self.unflattened_size = dim, tuple(unflattened_size)
  def forward(self, x: Tensor) -> Tensor:
    """Unflatten x."""
    return x.unflatten(self.dim, self.unflattened_size)
  def extra_repr(self):
    """As torch's."""
    return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Unfold(Module):
  """torch.nn.Unfold (im2col)."""
  def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
    super().__init__()
    self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride
  def forward(self, x: Tensor) -> Tensor:
    """Extract the sliding blocks of x."""
    return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
  def extra_repr(self):
    """As torch's."""
    return f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, stride={self.stride}"


class Fold(Module):
  """torch.nn.Fold (col2im)."""
  def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
    super().__init__()
    self.output_size, self.kernel_size, self.dilation, self.padding, self.stride = output_size, kernel_size, dilation, padding, stride
  def forward(self, x: Tensor) -> Tensor:
    """Sum the blocks of x into an image."""
    return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)
  def extra_repr(self):
    """As torch's."""
    return f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, stride={self.stride}"


class PixelShuffle(Module):
  """torch.nn.PixelShuffle."""
  def __init__(self, upscale_factor: int):
    super().__init__()
    self.upscale_factor = upscale_factor
  def forward(self, x: Tensor) -> Tensor:
    """Rearrange channels into space."""
    return F.pixel_shuffle(x, self.upscale_factor)
  def extra_repr(self):
    """As torch's."""
    return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
  """torch.nn.PixelUnshuffle."""
  def __init__(self, downscale_factor: int):
    super().__init__()
    self.downscale_factor = downscale_factor
  def forward(self, x: Tensor) -> Tensor:
    """Rearrange space into channels."""
    return F.pixel_unshuffle(x, self.downscale_factor)
  def extra_repr(self):
    """As torch's."""
    return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
  """torch.nn.ChannelShuffle."""
  def __init__(self, groups: int):
    super().__init__()
    self.groups = groups
  def forward(self, x: Tensor) -> Tensor:
    """Shuffle the channels of x."""
    return F.channel_shuffle(x, self.groups)
  def extra_repr(self):
    """As torch's."""
    return f"groups={self.groups}"


class _DropoutNd(Module):
  """Channel dropout (Dropout1d/2d/3d) and AlphaDropout: p, inplace (ignored); identity in eval mode."""
  _fn = "dropout2d"
  def __init__(self, p: float = 0.5, inplace: bool = False):
    super().__init__()
    if not 0 <= p <= 1: raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
    self.p, self.inplace = p, inplace
  def forward(self, x: Tensor) -> Tensor:
    """Apply the dropout (training mode only)."""
    return getattr(F, self._fn)(x, self.p, self.training)
  def extra_repr(self):
    """As torch's."""
    return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
  """torch.nn.Dropout1d: zero whole channels."""
  _fn = "dropout1d"
class Dropout2d(_DropoutNd):
  """torch.nn.Dropout2d: zero whole channels."""
  _fn = "dropout2d"
class Dropout3d(_DropoutNd):
  """torch.nn.Dropout3d: zero whole channels."""
  _fn = "dropout3d"
class AlphaDropout(_DropoutNd):
  """torch.nn.AlphaDropout: dropout keeping SELU's statistics."""
  _fn = "alpha_dropout"
class FeatureAlphaDropout(_DropoutNd):
  """torch.nn.FeatureAlphaDropout: alpha dropout of whole channels."""
  _fn = "feature_alpha_dropout"


class CosineSimilarity(Module):
  """torch.nn.CosineSimilarity along dim."""
  def __init__(self, dim: int = 1, eps: float = 1e-8):
    super().__init__()
    self.dim, self.eps = dim, eps
  def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
    """The cosine similarity of x1 and x2."""
    return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
  """torch.nn.PairwiseDistance: the p-norm of x1 - x2 + eps over the last dim."""
  def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    super().__init__()
    self.norm, self.eps, self.keepdim = p, eps, keepdim
  def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
    """The distance between x1 and x2."""
    return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class Bilinear(Module):
  """torch.nn.Bilinear: y = x1^T A x2 + b; weight (out, in1, in2) and bias ~ U(-1/sqrt(in1), 1/sqrt(in1)), as torch."""
  def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
    super().__init__()
    self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
    bound = 1 / math.sqrt(in1_features)
    self.weight = uniform_param(out_features, in1_features, in2_features, bound=bound, dtype=dtype, device=device)
    self.register_parameter("bias", uniform_param(out_features, bound=bound, dtype=dtype, device=device) if bias else None)
  def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
    """Apply the bilinear form."""
    return F.bilinear(x1, x2, self.weight, self.bias)
  def extra_repr(self):
    """As torch's."""
    return f"in1_features={self.in1_features}, in2_features={self.in2_features}, out_features={self.out_features}, bias={self.bias is not None}"


__all__ = ["MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "LPPool1d", "LPPool2d", "LPPool3d",
           "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "Unflatten", "Unfold", "Fold", "PixelShuffle", "PixelUnshuffle",
           "ChannelShuffle", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "CosineSimilarity", "PairwiseDistance",
           "Bilinear"] + list(_PADS)
