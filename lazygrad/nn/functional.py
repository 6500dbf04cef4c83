"""lazygrad.nn.functional, imported as F: torch.nn.functional's names, signatures and defaults.

Thin wrappers over Tensor methods where lazygrad has them (x.relu(), x.conv2d(...), x.cross_entropy(...)),
compositions of Tensor ops where it does not; the losses live in functional_loss and the spatial ops
(conv_transpose, pooling, interpolate, pad modes, fold) in functional_spatial, both re-exported here.
`inplace=True` is accepted and ignored everywhere: every op makes a new lazy value. Where a function
differs from torch, its docstring says so."""
from __future__ import annotations
import warnings
from typing import Optional
from lazygrad.tensor import Tensor
from lazygrad.nn.functional_loss import *  # noqa: F401,F403 (torch's F is one namespace)
from lazygrad.nn.functional_loss import __all__ as _loss_names
from lazygrad.nn.functional_spatial import *  # noqa: F401,F403
from lazygrad.nn.functional_spatial import __all__ as _spatial_names


# ---- activations
def relu(input: Tensor, inplace: bool = False) -> Tensor:
  """F.relu: max(x, 0)."""
  return input.relu()


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
  """F.relu6: min(max(x, 0), 6), as hardtanh(x, 0, 6) (gradient 0 at both kinks, as torch)."""
  return input.hardtanh(0.0, 6.0)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
  """F.elu: x for x > 0, else alpha (exp(x) - 1)."""
  return input.elu(alpha)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
  """F.selu: scale * elu(x, alpha) with torch's constants."""
  return 1.0507009873554804934193349852946 * input.elu(1.6732632423543772848170429916717)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
  """F.celu: max(0, x) + min(0, alpha (exp(x / alpha) - 1))."""
  return (input > 0).where(input, alpha * ((input <= 0).where(input, 0) / alpha).expm1())


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
  """F.leaky_relu: x for x > 0, else negative_slope * x."""
  return input.leaky_relu(negative_slope)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
  """F.prelu: leaky_relu with a learned slope per channel (dim 1) or one shared slope."""
  w = weight.reshape((1, -1) + (1,) * (input.ndim - 2)) if weight.numel() > 1 and input.ndim >= 2 else weight.reshape(())
  return (input > 0).where(input, input * w)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False) -> Tensor:
  """F.rrelu: negative inputs times a slope uniform in [lower, upper] when training (lazygrad's random stream), else the
  mean slope (lower + upper) / 2."""
  if not training: return input.leaky_relu((lower + upper) / 2)
  slope = Tensor.rand(*input.shape, device=input.device) * (upper - lower) + lower
  return (input >= 0).where(input, input * slope)


def glu(input: Tensor, dim: int = -1) -> Tensor:
  """F.glu: a * sigmoid(b) for the two halves a, b of dim."""
  if input.shape[dim] % 2: raise ValueError(f"glu: dim {dim} of input {input.shape} must have an even size")
  a, b = input.chunk(2, dim)
  return a * b.sigmoid()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
  """F.gelu: x Phi(x), exact (erf) or approximate='tanh'."""
  return input.gelu(approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
  """F.silu: x sigmoid(x)."""
  return input.silu()


def mish(input: Tensor, inplace: bool = False) -> Tensor:
  """F.mish: x tanh(softplus(x))."""
  return input.mish()


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
  """F.hardswish: x relu6(x + 3) / 6 (gradient x/3 + 1/2 inside (-3, 3), 0 below, 1 above, as torch)."""
  return (input <= -3).where(0, (input >= 3).where(input, input * (input + 3) / 6))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
  """F.hardsigmoid: relu6(x + 3) / 6 (gradient 1/6 strictly inside (-3, 3), as torch)."""
  return (input <= -3).where(0, (input >= 3).where(1, input / 6 + 0.5)).cast(input._float().dtype)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
  """F.hardtanh: x clamped to [min_val, max_val]."""
  return input.hardtanh(min_val, max_val)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
  """F.hardshrink: x where |x| > lambd, else 0."""
  return ((input > lambd) | (input < -lambd)).where(input, 0).cast(input.dtype)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
  """F.softshrink: x - lambd above lambd, x + lambd below -lambd, else 0."""
  return (input > lambd).where(input - lambd, (input < -lambd).where(input + lambd, 0)).cast(input.dtype)


def tanhshrink(input: Tensor) -> Tensor:
  """F.tanhshrink: x - tanh(x)."""
  return input - input.tanh()


def softsign(input: Tensor) -> Tensor:
  """F.softsign: x / (1 + |x|)."""
  return input / (1 + input.abs())


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
  """F.softplus: log(1 + exp(beta x)) / beta, x where beta x > threshold."""
  return input.softplus(beta, threshold)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
  """F.threshold: x where x > threshold, else value."""
  return (input > threshold).where(input, value).cast(input.dtype)


def logsigmoid(input: Tensor) -> Tensor:
  """F.logsigmoid: log(sigmoid(x)), stable."""
  return input.logsigmoid()


def sigmoid(input: Tensor) -> Tensor:
  """F.sigmoid (torch.sigmoid)."""
  return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
  """F.tanh (torch.tanh)."""
  return input.tanh()


def _softmax_dim(op: str, ndim: int, dim) -> int:
  if dim is not None: return dim
  warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X as an argument.", stacklevel=3)
  return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype=None) -> Tensor:
  """F.softmax along dim (dim=None picks torch's legacy implicit dim, with its warning); dtype casts first."""
  return input.softmax(_softmax_dim("softmax", input.ndim, dim), dtype=dtype)


def softmin(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype=None) -> Tensor:
  """F.softmin: softmax(-x)."""
  return (-input).softmax(_softmax_dim("softmin", input.ndim, dim), dtype=dtype)


def log_softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype=None) -> Tensor:
  """F.log_softmax along dim; dtype casts first."""
  return input.log_softmax(_softmax_dim("log_softmax", input.ndim, dim), dtype=dtype)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
  """F.gumbel_softmax: softmax((logits + Gumbel noise) / tau) (lazygrad's random stream); hard=True returns the one-hot of the
  argmax with the soft gradient (straight-through), as torch."""
  u = Tensor.rand(*logits.shape, device=logits.device)
  y = ((logits - (-(u + eps).log() + eps).log()) / tau).softmax(dim)
  if not hard: return y
  hot = y.argmax(dim, keepdim=True).eq(Tensor.arange(y.shape[dim], device=y.device).reshape(
    tuple(-1 if i == dim % y.ndim else 1 for i in range(y.ndim)))).cast(y.dtype)
  return hot - y.detach() + y


# ---- linear layers, embeddings, distances
def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
  """F.linear: x @ weight.T + bias, weight (out, in)."""
  return input.linear(weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
  """F.bilinear: y_k = x1 A_k x2 + b_k with weight (out, in1, in2), inputs (..., in1) and (..., in2)."""
  if weight.ndim != 3 or weight.shape[1] != input1.shape[-1] or weight.shape[2] != input2.shape[-1]:
    raise ValueError(f"bilinear: weight {weight.shape} does not fit inputs {input1.shape} and {input2.shape} (expected (out, in1, in2))")
  left = input1.unsqueeze(-2).unsqueeze(-2) @ weight              # (..., out, 1, in2)
  out = (left.squeeze(-2) * input2.unsqueeze(-2)).sum(-1)
  return out + bias if bias is not None else out


def embedding(input: Tensor, weight: Tensor, padding_idx: Optional[int] = None, max_norm: Optional[float] = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
  """F.embedding: rows of weight picked by the integer input; the padding_idx row gets no gradient, as torch.
  max_norm (which renormalises weight in place), scale_grad_by_freq and sparse are not supported."""
  if max_norm is not None or scale_grad_by_freq or sparse:
    raise ValueError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
  out = input.embedding(weight)
  if padding_idx is None: return out
  return (input == padding_idx % weight.shape[0]).unsqueeze(-1).where(out.detach(), out)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
  """F.one_hot: int64 (..., num_classes); num_classes=-1 reads the max (a host sync)."""
  return tensor.one_hot(num_classes)


def _norm(x: Tensor, p: float, dim, keepdim: bool) -> Tensor:
  if p == 2: return (x * x).sum(dim, keepdim=keepdim).sqrt()
  if p == 1: return x.abs().sum(dim, keepdim=keepdim)
  if p == float("inf"): return x.abs().amax(dim, keepdim=keepdim)
  return (x.abs() ** p).sum(dim, keepdim=keepdim) ** (1.0 / p)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
  """F.normalize: x / max(||x||_p, eps) along dim."""
  if out is not None: raise ValueError("normalize: out= is not supported")
  return input / _norm(input, p, dim, True).maximum(eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
  """F.cosine_similarity: sum(x1 x2) / (max(||x1||, eps) max(||x2||, eps)) along dim, inputs broadcast (torch >= 2.0's formula)."""
  n1 = _norm(x1, 2, dim, True).maximum(eps)
  n2 = _norm(x2, 2, dim, True).maximum(eps)
  return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
  """F.pairwise_distance: ||x1 - x2 + eps||_p over the last dim."""
  d = x1 - x2 + eps
  return _norm(d, p, d.ndim - 1 if d.ndim else None, keepdim)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
  """F.pdist: the p-norm distances between the rows of an (N, M) input, the upper triangle flattened (N(N-1)/2,)."""
  n = input.shape[0]
  rows = [i for i in range(n) for _ in range(i + 1, n)]
  cols = [j for i in range(n) for j in range(i + 1, n)]
  if not rows: return Tensor.zeros(0, dtype=input.dtype, device=input.device)
  a, b = input[Tensor(rows, device=input.device)], input[Tensor(cols, device=input.device)]
  return _norm(a - b, p, 1, False)


# ---- dropout
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
  """F.dropout (lazygrad's random stream, so not torch's mask)."""
  return input.dropout(p, training)


def _feature_dropout(x: Tensor, p: float, training: bool, lead: int, op: str) -> Tensor:
  if not 0 <= p <= 1: raise ValueError(f"{op}: p must be in [0, 1], got {p}")
  if not training or p == 0: return x
  mask_shape = x.shape[:lead] + (1,) * (x.ndim - lead)
  keep = Tensor.rand(*mask_shape, device=x.device) >= p
  return keep.where(x, 0) * (1 / (1 - p)) if p < 1 else x * 0


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
  """F.dropout1d: zero whole channels of (N, C, L) or (C, L)."""
  return _feature_dropout(input, p, training, input.ndim - 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
  """F.dropout2d: zero whole channels of (N, C, H, W) or (C, H, W)."""
  return _feature_dropout(input, p, training, input.ndim - 2, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
  """F.dropout3d: zero whole channels of (N, C, D, H, W) or (C, D, H, W)."""
  return _feature_dropout(input, p, training, input.ndim - 3, "dropout3d")


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
  """F.alpha_dropout: dropout that keeps SELU's mean and variance (dropped values go to -alpha', then an affine fix)."""
  if not training or p == 0: return input
  alpha_p = -1.7580993408473766
  a = ((1 - p) * (1 + p * alpha_p ** 2)) ** -0.5
  keep = Tensor.rand(*input.shape, device=input.device) >= p
  return keep.where(input, alpha_p) * a + (-a * alpha_p * p)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
  """F.feature_alpha_dropout: alpha_dropout of whole channels (dim 1), as torch."""
  if not 0 <= p <= 1: raise ValueError(f"feature_alpha_dropout: p must be in [0, 1], got {p}")
  if not training or p == 0: return input
  alpha_p = -1.7580993408473766
  a = ((1 - p) * (1 + p * alpha_p ** 2)) ** -0.5
  keep = Tensor.rand(*(input.shape[:2] + (1,) * (input.ndim - 2)), device=input.device) >= p
  return keep.where(input, alpha_p) * a + (-a * alpha_p * p)


# ---- normalisation
def layer_norm(input: Tensor, normalized_shape, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
  """F.layer_norm over the trailing normalized_shape dims."""
  return input.layer_norm(normalized_shape, weight, bias, eps)


def rms_norm(input: Tensor, normalized_shape, weight: Optional[Tensor] = None, eps: Optional[float] = None) -> Tensor:
  """F.rms_norm over the trailing normalized_shape dims."""
  return input.rms_norm(normalized_shape, weight, eps)


def batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor], weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
  """F.batch_norm on (N, C, ...); in training, running_mean/var are updated in place (lazily), as torch."""
  return input.batch_norm(running_mean, running_var, weight, bias, training, momentum, eps)


def group_norm(input: Tensor, num_groups: int, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
  """F.group_norm on (N, C, *): normalise each of num_groups channel groups over its channels and spatial dims (biased
  variance), then weight and bias per channel; half floats compute in float32."""
  if input.ndim < 2 or input.shape[1] % num_groups:
    raise ValueError(f"group_norm: channels of input {input.shape} must be divisible by num_groups {num_groups}")
  n, c = input.shape[:2]
  x = input.float() if input.dtype.itemsize < 4 else input
  g = x.reshape(n, num_groups, -1)
  mean = g.mean(-1, keepdim=True)
  centered = g - mean
  out = (centered * (centered.square().mean(-1, keepdim=True) + eps).rsqrt()).reshape(input.shape)
  bshape = (1, c) + (1,) * (input.ndim - 2)
  if weight is not None: out = out * weight.reshape(bshape)
  if bias is not None: out = out + bias.reshape(bshape)
  return out.cast(input.dtype)


def instance_norm(input: Tensor, running_mean: Optional[Tensor] = None, running_var: Optional[Tensor] = None, weight: Optional[Tensor] = None,
                  bias: Optional[Tensor] = None, use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
  """F.instance_norm on (N, C, *): each (sample, channel) normalised over its spatial dims; with use_input_stats=False the
  running statistics are used instead; running stats given with use_input_stats are updated with the batch mean of the
  per-instance statistics, as torch."""
  n, c = input.shape[:2]
  if not use_input_stats:
    return input.batch_norm(running_mean, running_var, weight, bias, False, momentum, eps)
  if running_mean is not None and running_var is not None:
    # torch runs batch_norm on (1, N*C, *) with the running stats repeated N times and averages the updates back
    x = input.reshape((1, n * c) + input.shape[2:])
    rm, rv = running_mean.repeat(n).contiguous(), running_var.repeat(n).contiguous()
    out = x.batch_norm(rm, rv, None, None, True, momentum, eps).reshape(input.shape)
    running_mean.assign(rm.reshape(n, c).mean(0).detach())
    running_var.assign(rv.reshape(n, c).mean(0).detach())
  else:
    out = _instance(input, eps)
  bshape = (1, c) + (1,) * (input.ndim - 2)
  if weight is not None: out = out * weight.reshape(bshape)
  if bias is not None: out = out + bias.reshape(bshape)
  return out


def _instance(x: Tensor, eps: float) -> Tensor:
  axes = tuple(range(2, x.ndim))
  h = x.float() if x.dtype.itemsize < 4 else x
  centered = h - h.mean(axes, keepdim=True)
  return (centered * (centered.square().mean(axes, keepdim=True) + eps).rsqrt()).cast(x.dtype)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
  """F.local_response_norm: x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta, as torch's composition."""
  if input.ndim < 3: raise ValueError(f"local_response_norm: expects an input of 3 or more dims, got {input.shape}")
  sq = input.square().unsqueeze(1)
  sq = sq.reshape(sq.shape[:3] + (-1,))                                               # (N, 1, C, rest)
  sq = sq.pad((0, 0, size // 2, (size - 1) // 2))
  div = avg_pool2d(sq, (size, 1), stride=1).squeeze(1).reshape(input.shape)   # noqa: F405 (from functional_spatial)
  return input / (div * alpha + k) ** beta


# ---- attention
def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: Optional[float] = None, enable_gqa: bool = False) -> Tensor:
  """F.scaled_dot_product_attention over (..., L, E) queries; enable_gqa repeats each key/value head for its group of query
  heads (dim -3), as torch. dropout_p uses lazygrad's random stream (pass 0 when not training, as torch expects)."""
  if enable_gqa and key.ndim >= 3 and key.shape[-3] != query.shape[-3]:
    hq, hk = query.shape[-3], key.shape[-3]
    if hq % hk: raise ValueError(f"scaled_dot_product_attention: {hq} query heads are not a multiple of {hk} key heads")
    def rep(t): return t.unsqueeze(-3).expand(t.shape[:-2] + (hq // hk,) + t.shape[-2:]).reshape(t.shape[:-3] + (hq,) + t.shape[-2:])
    key, value = rep(key), rep(value)
  return query.scaled_dot_product_attention(key, value, attn_mask, dropout_p, is_causal, scale)


__all__ = ["relu", "relu6", "elu", "selu", "celu", "leaky_relu", "prelu", "rrelu", "glu", "gelu", "silu", "mish", "hardswish",
           "hardsigmoid", "hardtanh", "hardshrink", "softshrink", "tanhshrink", "softsign", "softplus", "threshold", "logsigmoid",
           "sigmoid", "tanh", "softmax", "softmin", "log_softmax", "gumbel_softmax", "linear", "bilinear", "embedding", "one_hot",
           "normalize", "cosine_similarity", "pairwise_distance", "pdist", "dropout", "dropout1d", "dropout2d", "dropout3d",
           "alpha_dropout", "feature_alpha_dropout", "layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm", "local_response_norm",
           "scaled_dot_product_attention"] + list(_loss_names) + list(_spatial_names)
