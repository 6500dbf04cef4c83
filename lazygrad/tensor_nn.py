"""nn functional as Tensor methods: convolution, pooling, normalisation, attention, losses.
All compositions of Tensor ops; the scheduler (and the numpy device's contraction
path) make the broadcast-multiply-sum in conv and attention run as matmuls."""
from __future__ import annotations
import math
from typing import TYPE_CHECKING, Optional
from lazygrad.dtype import dtypes
from lazygrad.tensor_base import TensorBase, ShapeError, DTypeError, ArgumentError, no_grad, broadcast_shape, autocast_op, LOWER, FP32
from lazygrad.tensor_attention import flash_attention
from lazygrad.ops import Ops
from lazygrad.autograd import custom_vjp

if TYPE_CHECKING: from lazygrad.tensor import Tensor


def _tuple(x, n: int, name: str, op: str) -> tuple:
  t = tuple(x) if isinstance(x, (tuple, list)) else (x,) * n
  if len(t) != n or not all(isinstance(v, int) for v in t): raise ValueError(f"{op}: {name} must be an int or {n} ints, got {x}")
  return t


def _reduction(loss: Tensor, reduction: str, op: str) -> Tensor:
  if reduction == "mean": return loss.mean()
  if reduction == "sum": return loss.sum()
  if reduction == "none": return loss
  raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_pool(op: str, shape, k: tuple, s: tuple, p: tuple, dil: tuple) -> None:
  if any(v <= 0 for v in k + s + dil) or any(v < 0 for v in p):
    raise ValueError(f"{op}: kernel_size {k}, stride {s} and dilation {dil} must be positive and padding {p} non-negative")
  for n, kk, ss, pp, dd in zip(shape[-2:], k, s, p, dil):
    if (n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 < 1:
      raise ShapeError(f"{op}: kernel {k} (padding {p}, dilation {dil}) is larger than the input {tuple(shape)}; output would be empty")


class NNMixin(TensorBase):
  """Tensor's torch.nn.functional counterparts: conv, pooling, dropout, norms, attention, embedding and losses."""
  __slots__ = ()
  # ---- sliding windows
  def _pool(self, kernel: tuple, stride: tuple, dilation: tuple) -> Tensor:
    """Windows over the last len(kernel) dims: (..., o1, o2, .., k1, k2, ..) as views."""
    Tensor = self._Tensor
    x, nk = self, len(kernel)
    lead = self.ndim - nk
    for j, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
      dim = lead + j
      n = x.shape[dim]
      o = (n - d * (k - 1) - 1) // s + 1
      if k <= s and d == 1 and o * s <= n:
        # non-overlapping windows: one reshape of the dim, a pure view
        w = x.narrow(dim, 0, o * s).unflatten(dim, (o, s)).narrow(dim + 1, 0, k)
        x = w.movedim(dim + 1, -1)
      else:
        # overlapping windows: one strided slice per kernel tap, stacked last
        taps = [x._slice_dim(dim, t * d, t * d + (o - 1) * s + 1, s) for t in range(k)]
        x = Tensor.stack(taps, -1)
    return x

  def _windows(self, kernel: tuple, stride: tuple, dilation: tuple) -> Tensor:
    """Sliding windows over the last len(kernel) dims as ONE view, (..., o1, o2, .., k1, k2, ..): element (o, k) of a
    dim of size n reads index o * stride + k * dilation. Built as tinygrad's pool: the dim is repeated R times (expand +
    reshape), cut into k rows of length L = d (mod n) so that row j starts at j * d, and every s-th element of a row is
    kept; the ShapeTracker merges that into strides (s, d) on one view (or two views over a padded input, whose mask
    depends on o * s + k * d). Nothing is copied: a conv reads its input through it (implicit GEMM)."""
    x, nk = self, len(kernel)
    lead = self.shape[:self.ndim - nk]
    geo = []
    for n, k, s, d in zip(self.shape[self.ndim - nk:], kernel, stride, dilation):
      o = (n - d * (k - 1) - 1) // s + 1
      L = n + d
      while L < o * s: L += n                 # rows at least o * s long, still starting at j * d (mod n)
      geo.append((n, k, s, o, L, -(-k * L // n)))
    x = x.reshape(lead + tuple(v for n, *_ in geo for v in (1, n)))
    x = x.expand(lead + tuple(v for n, *_, r in geo for v in (r, n)))
    x = x.reshape(lead + tuple(r * n for n, *_, r in geo))
    x = x.shrink(tuple((0, s_) for s_ in lead) + tuple((0, k * L) for _, k, _, _, L, _ in geo))
    x = x.reshape(lead + tuple(v for _, k, _, _, L, _ in geo for v in (k, L)))
    x = x.shrink(tuple((0, s_) for s_ in lead) + tuple(r for _, k, s, o, _, _ in geo for r in ((0, k), (0, o * s))))
    x = x.reshape(lead + tuple(v for _, k, s, o, _, _ in geo for v in (k, o, s)))
    x = x.shrink(tuple((0, s_) for s_ in lead) + tuple(r for _, k, s, o, _, _ in geo for r in ((0, k), (0, o), (0, 1))))
    x = x.reshape(lead + tuple(v for _, k, _, o, _, _ in geo for v in (k, o)))
    nl = len(lead)
    return x.permute(tuple(range(nl)) + tuple(nl + 2 * j + 1 for j in range(nk)) + tuple(nl + 2 * j for j in range(nk)))

  def conv2d(self, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """F.conv2d: input (N, C, H, W), weight (O, C/groups, kH, kW); stride, padding (int, pair, 'same', 'valid'), dilation, groups.
    Built as windows (views) times the weight summed; the scheduler runs it as a contraction."""
    return self._conv(weight, bias, stride, padding, dilation, groups, 2, "conv2d")
  def conv1d(self, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """F.conv1d: input (N, C, L), weight (O, C/groups, k); as conv2d with one spatial dim."""
    return self._conv(weight, bias, stride, padding, dilation, groups, 1, "conv1d")

  @autocast_op(LOWER)
  def _conv(self, weight, bias, stride, padding, dilation, groups, nd, op) -> Tensor:
    Tensor = self._Tensor
    if not isinstance(weight, Tensor): raise TypeError(f"{op}: weight must be a Tensor")
    if self.ndim != nd + 2 or weight.ndim != nd + 2:
      raise ShapeError(f"{op}: expects input (N, C, {'H, W' if nd == 2 else 'L'}) and weight of {nd + 2} dims, got {self.shape} and {weight.shape}")
    cin, spatial = self.shape[1], self.shape[2:]
    cout, cin_g, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    if not isinstance(groups, int) or groups < 1 or cin % groups or cout % groups:
      raise ShapeError(f"{op}: groups={groups} must divide in_channels {cin} and out_channels {cout} (input {self.shape}, weight {weight.shape})")
    if cin_g * groups != cin:
      raise ShapeError(f"{op}: input {self.shape} has {cin} channels but weight {weight.shape} expects {cin_g * groups}")
    stride, dilation = _tuple(stride, nd, "stride", op), _tuple(dilation, nd, "dilation", op)
    if isinstance(padding, str):
      if padding == "valid": padding = (0,) * nd
      elif padding == "same":
        if any(s != 1 for s in stride): raise ValueError(f"{op}: padding='same' needs stride 1")
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        pads = []
        for t in reversed(total): pads += [t // 2, t - t // 2]
        return self.pad(tuple(pads))._conv(weight, bias, stride, 0, dilation, groups, nd, op)
      else: raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    padding = _tuple(padding, nd, "padding", op)
    if any(s <= 0 for s in stride) or any(d <= 0 for d in dilation) or any(p < 0 for p in padding):
      raise ValueError(f"{op}: stride and dilation must be positive and padding non-negative")
    for sz, k, d, p in zip(spatial, kernel, dilation, padding):
      if sz + 2 * p < d * (k - 1) + 1:
        raise ShapeError(f"{op}: kernel {tuple(kernel)} (dilation {dilation}) is larger than the padded input {tuple(spatial)} "
                         f"(input {self.shape}, weight {weight.shape}, padding {padding})")
    if bias is not None and bias.shape != (cout,): raise ShapeError(f"{op}: bias must have shape ({cout},), got {bias.shape}")
    out = self._conv_windows(weight, stride, padding, dilation, groups)
    return out + bias.reshape((1, cout) + (1,) * nd) if bias is not None else out

  def _conv_windows(self, weight: Tensor, stride: tuple, padding: tuple, dilation: tuple, groups: int) -> Tensor:
    """The convolution proper (checked arguments, no bias): windows of the padded input (one view) times the weight,
    summed over (C_in/groups, *k): one contraction with M = (N, *out), N = C_out/groups, K = (C_in/groups, *k) and the
    groups a batch dim, which the matmul template runs as implicit GEMM. Its gradient is custom (_conv_vjp)."""
    nd = len(stride)
    n, cin_g, kernel, cout = self.shape[0], weight.shape[1], tuple(weight.shape[2:]), weight.shape[0]
    x = self.pad(tuple(q for p in reversed(padding) for q in (p, p)))._windows(kernel, stride, dilation)   # (N, Cin, *out, *k)
    out_sp = x.shape[2:2 + nd]
    x = x.reshape((n, groups, 1, cin_g) + out_sp + kernel)                    # (N, G, 1, Cin_g, *out, *k)
    w = weight.reshape((1, groups, cout // groups, cin_g) + (1,) * nd + kernel)
    red = (3,) + tuple(range(4 + nd, 4 + 2 * nd))
    out = (x * w).sum(red, dtype=x.dtype if x.dtype.is_float else None)._movement(Ops.RESHAPE, (n, cout) + out_sp)
    if not out.requires_grad: return out
    return custom_vjp(out, (self, weight), lambda g: _conv_vjp(self, weight, g, stride, padding, dilation, groups))

  def max_pool2d(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False) -> Tensor:
    """F.max_pool2d on (N, C, H, W) or (C, H, W); ceil_mode and return_indices are not supported.
    Unlike torch, tied maxima in a window share the gradient equally (torch gives it to one)."""
    if ceil_mode or return_indices: raise ValueError("max_pool2d: ceil_mode and return_indices are not supported")
    if self.ndim not in (3, 4): raise ShapeError(f"max_pool2d: expects a 3-D or 4-D input, got {self.shape}")
    k = _tuple(kernel_size, 2, "kernel_size", "max_pool2d")
    s = _tuple(stride if stride is not None else k, 2, "stride", "max_pool2d")
    p = _tuple(padding, 2, "padding", "max_pool2d")
    if any(pp > kk // 2 for pp, kk in zip(p, k)): raise ValueError(f"max_pool2d: padding {p} must be at most half the kernel {k}")
    dil = _tuple(dilation, 2, "dilation", "max_pool2d")
    _check_pool("max_pool2d", self.shape, k, s, p, dil)
    x = self.pad((p[1], p[1], p[0], p[0]), value=float("-inf")) if any(p) else self
    return x._pool(k, s, dil).amax((-2, -1))

  def avg_pool2d(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    """F.avg_pool2d on (N, C, H, W) or (C, H, W), with count_include_pad; ceil_mode and divisor_override are not supported."""
    if ceil_mode: raise ValueError("avg_pool2d: ceil_mode is not supported")
    if self.ndim not in (3, 4): raise ShapeError(f"avg_pool2d: expects a 3-D or 4-D input, got {self.shape}")
    k = _tuple(kernel_size, 2, "kernel_size", "avg_pool2d")
    s = _tuple(stride if stride is not None else k, 2, "stride", "avg_pool2d")
    p = _tuple(padding, 2, "padding", "avg_pool2d")
    _check_pool("avg_pool2d", self.shape, k, s, p, (1, 1))
    x = self.pad((p[1], p[1], p[0], p[0])) if any(p) else self
    windows = x._pool(k, s, (1, 1))
    if count_include_pad or not any(p): return windows.mean((-2, -1))
    ones = self.ones_like().pad((p[1], p[1], p[0], p[0]))._pool(k, s, (1, 1))
    return windows.sum((-2, -1)) / ones.sum((-2, -1))

  def adaptive_avg_pool2d(self, output_size) -> Tensor:
    """F.adaptive_avg_pool2d: windows as torch's (one avg_pool2d when the sizes divide, else one mean per output cell)."""
    Tensor = self._Tensor
    oh, ow = _tuple(output_size, 2, "output_size", "adaptive_avg_pool2d")
    h, w = self.shape[-2:]
    if h % oh == 0 and w % ow == 0: return self.avg_pool2d((h // oh, w // ow))
    rows = []
    for i in range(oh):
      h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
      cols = [self[..., h0:h1, (j * w) // ow: -(-((j + 1) * w) // ow)].mean((-2, -1)) for j in range(ow)]
      rows.append(Tensor.stack(cols, -1))
    return Tensor.stack(rows, -2)

  # ---- regularisation and normalisation
  def dropout(self, p: float = 0.5, training: bool = True) -> Tensor:
    """F.dropout: zero each element with probability p and scale the rest by 1/(1-p) when training (the mask is lazygrad's Philox
    stream, so not torch's numbers); identity when not training."""
    Tensor = self._Tensor
    if not 0 <= p <= 1: raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0: return self
    if p == 1: return self * 0
    keep = Tensor.rand(*self.shape, device=self.device) >= p
    return keep.where(self, 0) * (1 / (1 - p))

  def layer_norm(self, normalized_shape, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """F.layer_norm over the trailing normalized_shape dims, with optional weight and bias; half floats normalise in float32."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if self.shape[self.ndim - len(shape):] != shape:
      raise ShapeError(f"layer_norm: normalized_shape {shape} does not match the end of input shape {self.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
      if t is not None and t.shape != shape: raise ShapeError(f"layer_norm: {name} of shape {t.shape} must have normalized_shape {shape}")
    axes = tuple(range(self.ndim - len(shape), self.ndim))
    # half floats normalise in float32 and round once at the end, as torch (a float16 mean is off by up to half an ulp of the data)
    x = self.float() if self.dtype.is_float and self.dtype.itemsize < 4 else self
    mean = x.mean(axes, keepdim=True)
    centered = x - mean
    out = centered * ((centered * centered).mean(axes, keepdim=True) + eps).rsqrt()
    if weight is not None: out = out * weight
    out = out + bias if bias is not None else out
    # a half-float input with float32 weight and bias (autocast's usual case) stays half, as torch's mixed-dtype layer_norm
    return out if x is self else out.cast(self.dtype)

  def rms_norm(self, normalized_shape, weight: Optional[Tensor] = None, eps: Optional[float] = None) -> Tensor:
    """F.rms_norm: x / sqrt(mean(x^2) + eps) over the trailing dims, times weight; eps defaults to float32's machine epsilon;
    half floats compute in float32 (their squares overflow) and return their dtype, as torch."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    axes = tuple(range(self.ndim - len(shape), self.ndim))
    eps = eps if eps is not None else 1.1920928955078125e-07
    x = self._half_to_float()
    out = x * ((x * x).mean(axes, keepdim=True) + eps).rsqrt()
    out = out * weight if weight is not None else out
    return out if x is self else out.cast(self.dtype)

  def batch_norm(self, running_mean: Optional[Tensor], running_var: Optional[Tensor], weight: Optional[Tensor] = None,
                 bias: Optional[Tensor] = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """F.batch_norm on (N, C, ...): batch statistics when training (updating running_mean/var in place with momentum and the
    unbiased variance, as torch), else the running statistics. Half floats compute in float32 and return their dtype, as torch."""
    if self.ndim < 2: raise ValueError(f"batch_norm: expects an input of at least 2 dims (N, C, ...), got {self.shape}")
    c = self.shape[1]
    axes = (0,) + tuple(range(2, self.ndim))
    bshape = (1, c) + (1,) * (self.ndim - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
      if t is not None and t.shape != (c,): raise ShapeError(f"batch_norm: {name} must have shape ({c},), got {t.shape}")
    x = self._half_to_float()   # half floats: statistics in float32 (their squares overflow), as torch
    if training:
      n = self.numel() // c
      if n <= 1: raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input {self.shape}")
      mean = x.mean(axes, keepdim=True)
      var = ((x - mean) ** 2).mean(axes, keepdim=True)   # two passes (mean, then centred squares): no cancellation
      if running_mean is not None and running_var is not None:
        with no_grad():
          running_mean.assign(running_mean * (1 - momentum) + mean.detach().reshape(c) * momentum)
          running_var.assign(running_var * (1 - momentum) + var.detach().reshape(c) * (momentum * n / (n - 1)))
    else:
      if running_mean is None or running_var is None: raise ValueError("batch_norm: running stats are required when not training")
      mean, var = running_mean.reshape(bshape)._half_to_float(), running_var.reshape(bshape)._half_to_float()
    rstd = (var + eps).rsqrt()
    # x * scale + shift with per-channel scale = weight * rstd and shift = bias - mean * scale, as torch's cpu kernel: the
    # apply reads x once and no centred copy of x is stored (the variance's kernel centres it on the fly)
    scale = rstd * weight.reshape(bshape) if weight is not None else rstd
    shift = -mean * scale
    out = x * scale + (shift + bias.reshape(bshape) if bias is not None else shift)
    if training and out.requires_grad:
      inputs = (x, weight, bias)
      out = custom_vjp(out, tuple(t for t in inputs if t is not None),
                       lambda g: _batch_norm_vjp(x, weight, bias, g, mean, rstd, scale, axes, n))
    return out if x is self else out.cast(self.dtype)

  # ---- attention and embeddings
  @autocast_op(LOWER)
  def scaled_dot_product_attention(self, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
                                   is_causal: bool = False, scale: Optional[float] = None) -> Tensor:
    """F.scaled_dot_product_attention: softmax(q k^T * scale + mask) v over (..., L, E), (..., S, E), (..., S, Ev);
    attn_mask bool (True keeps) or additive, or is_causal. A row masked everywhere gives zeros (no nan). Runs as the
    flash-attention template when it fits (tensor_attention.fits_template; no gradient flows to attn_mask there)."""
    Tensor = self._Tensor
    q = self
    if q.ndim < 2 or key.ndim != q.ndim or value.ndim != q.ndim or q.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
      raise ShapeError(f"scaled_dot_product_attention: query {q.shape}, key {key.shape} and value {value.shape} "
                       "do not fit (..., L, E), (..., S, E), (..., S, Ev)")
    if is_causal and attn_mask is not None: raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    L, S = q.shape[-2], key.shape[-2]
    if attn_mask is not None:
      scores_shape = broadcast_shape("scaled_dot_product_attention", q.shape[:-2], key.shape[:-2]) + (L, S)
      try: broadcast_shape("scaled_dot_product_attention", attn_mask.shape, scores_shape)
      except ValueError:
        raise ShapeError(f"scaled_dot_product_attention: attn_mask {attn_mask.shape} does not broadcast to the scores {scores_shape} "
                         f"of query {q.shape} and key {key.shape}") from None
    # the flash-attention template (tensor_attention.py): one kernel, no L x S scores in memory
    if (fused := flash_attention(q, key, value, attn_mask, dropout_p, is_causal, scale)) is not None: return fused
    scores = (q @ key.transpose(-2, -1)) * scale
    if is_causal: scores = Tensor.ones(L, S, dtype=dtypes.bool, device=q.device).tril().where(scores, float("-inf"))
    if attn_mask is not None:
      scores = attn_mask.where(scores, float("-inf")) if attn_mask.dtype.is_bool else scores + attn_mask
    # softmax, made safe as torch's: a row the mask hides everywhere attends to nothing (zeros, zero gradients; not nan)
    m = scores.amax(-1, keepdim=True).detach()
    dead = m.eq(float("-inf"))
    e = (scores - dead.where(0, m)).exp()
    attn = e / dead.where(1, e.sum(-1, keepdim=True))
    if dropout_p > 0: attn = attn.dropout(dropout_p)
    return attn @ value

  def tril(self, diagonal: int = 0) -> Tensor:
    """torch.tril: zero above the diagonal-th diagonal of the last two dims."""
    Tensor = self._Tensor
    r, c = self.shape[-2:]
    keep = Tensor.arange(r, device=self.device).reshape(r, 1) + diagonal >= Tensor.arange(c, device=self.device).reshape(1, c)
    return keep.where(self, 0).cast(self.dtype)
  def triu(self, diagonal: int = 0) -> Tensor:
    """torch.triu: zero below the diagonal-th diagonal of the last two dims."""
    Tensor = self._Tensor
    r, c = self.shape[-2:]
    keep = Tensor.arange(r, device=self.device).reshape(r, 1) + diagonal <= Tensor.arange(c, device=self.device).reshape(1, c)
    return keep.where(self, 0).cast(self.dtype)

  def embedding(self, weight: Tensor) -> Tensor:
    """idx.embedding(weight): rows of weight (vocab, dim) picked by the integer tensor self."""
    if self.dtype.is_float: raise DTypeError(f"embedding: indices must be an integer tensor, got {self.dtype}")
    if weight.ndim != 2: raise ShapeError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    return weight._advanced_index([(0, self)], op="embedding", negative=False)   # torch: negative indices are out of range

  # ---- losses
  @autocast_op(FP32)
  def cross_entropy(self, target: Tensor, weight: Optional[Tensor] = None, ignore_index: int = -100,
                    reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """F.cross_entropy on logits (N, C, ...) or (C,): integer class targets (with weight, ignore_index) or class probabilities;
    label_smoothing and reduction as torch."""
    Tensor = self._Tensor
    if not isinstance(target, Tensor): raise TypeError("cross_entropy: target must be a Tensor")
    if self.ndim < 1: raise ValueError(f"cross_entropy: input must have a class dim, got shape {self.shape}")
    if not self.dtype.is_float: raise DTypeError(f"cross_entropy: the input must be float logits, got {self.dtype.name} (as torch)")
    if label_smoothing > 1.0:
      raise ArgumentError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    label_smoothing = label_smoothing if label_smoothing > 0 else 0.0   # torch smooths only when it is positive: a negative one is none
    cdim = 1 if self.ndim > 1 else 0
    logp = self.log_softmax(cdim)
    if target.dtype.is_float:   # class probabilities
      if target.shape != self.shape: raise ShapeError(f"cross_entropy: probability target {target.shape} must match input {self.shape}")
      n = self.shape[cdim]
      target = target * (1 - label_smoothing) + label_smoothing / n
      w = weight.reshape((n,) + (1,) * (self.ndim - cdim - 1)) if weight is not None else 1
      return _reduction(-(logp * target * w).sum(cdim), reduction, "cross_entropy")
    valid, safe = _class_target(self, target, ignore_index, "cross_entropy")
    nll = _picked_nll(logp, valid, safe, weight, cdim)
    if label_smoothing == 0: return _finish_nll(nll, valid, safe, weight, reduction)
    n = self.shape[cdim]
    w = weight.reshape((n,) + (1,) * (self.ndim - cdim - 1)) if weight is not None else None
    smooth = -(logp * w).sum(cdim) if w is not None else -logp.sum(cdim)
    smooth = valid.where(smooth, 0)
    if reduction == "mean":
      denom = (valid.where(weight[safe], 0).sum() if weight is not None else valid.sum())
      return (1 - label_smoothing) * _finish_nll(nll, valid, safe, weight, "mean") + label_smoothing / n * smooth.sum() / denom
    return (1 - label_smoothing) * _finish_nll(nll, valid, safe, weight, reduction) + \
      _reduction(label_smoothing / n * smooth, reduction, "cross_entropy")

  @autocast_op(FP32)
  def nll_loss(self, target: Tensor, weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """F.nll_loss on log-probabilities (N, C, ...) or (C,) with integer class targets, weight, ignore_index, reduction."""
    valid, safe = _class_target(self, target, ignore_index, "nll_loss")
    return _finish_nll(_picked_nll(self, valid, safe, weight, 1 if self.ndim > 1 else 0), valid, safe, weight, reduction)

  @autocast_op(FP32)
  def binary_cross_entropy(self, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean") -> Tensor:
    """F.binary_cross_entropy on probabilities; each log is clamped at -100, as torch."""
    if target.shape != self.shape: raise ShapeError(f"binary_cross_entropy: target {target.shape} must match input {self.shape}")
    # torch clamps each log at -100 so a 0 or 1 prediction stays finite
    loss = -(target * self.log().maximum(-100) + (1 - target) * (1 - self).log().maximum(-100))
    if weight is not None: loss = loss * weight
    return _reduction(loss, reduction, "binary_cross_entropy")

  @autocast_op(FP32)
  def binary_cross_entropy_with_logits(self, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean",
                                       pos_weight: Optional[Tensor] = None) -> Tensor:
    """F.binary_cross_entropy_with_logits: sigmoid and BCE in one stable expression, with weight and pos_weight."""
    if target.shape != self.shape: raise ShapeError(f"binary_cross_entropy_with_logits: target {target.shape} must match input {self.shape}")
    # log(1 + exp(-|x|)) form (logsigmoid): finite for logits of any size, and no cancellation in either log
    # (x - softplus(x) would round log(sigmoid(30)) = -9.4e-14 to 0)
    log_sig, log_sig_neg = self.logsigmoid(), (-self).logsigmoid()   # log(sigmoid(x)), log(1 - sigmoid(x))
    pw = pos_weight if pos_weight is not None else 1
    loss = -(pw * target * log_sig + (1 - target) * log_sig_neg)
    # at +-inf logits torch's own form, (1 - t) x - w log(sigmoid(x)) with w = (pos_weight - 1) t + 1: its values there (nan
    # where (1 - t) x is 0 * inf, inf for a wrong logit) and gradients (0 for a saturated right logit)
    w = (pos_weight - 1) * target + 1 if pos_weight is not None else 1
    loss = self.isinf().where((1 - target) * self - w * log_sig, loss)
    if weight is not None: loss = loss * weight
    return _reduction(loss, reduction, "binary_cross_entropy_with_logits")

  @autocast_op(FP32)
  def mse_loss(self, target: Tensor, reduction: str = "mean") -> Tensor:
    """F.mse_loss: mean (or sum/none) of squared differences; a target that expands to the input's shape is broadcast."""
    if target.shape != self.shape and target.ndim <= self.ndim:
      try: target = target.expand(self.shape)
      except ValueError: pass
    if target.shape != self.shape: raise ShapeError(f"mse_loss: target {target.shape} must match input {self.shape}")
    d = self - target
    return _reduction(d * d, reduction, "mse_loss")

  @autocast_op(FP32)
  def l1_loss(self, target: Tensor, reduction: str = "mean") -> Tensor:
    """F.l1_loss: mean (or sum/none) of absolute differences; shapes must match."""
    if target.shape != self.shape: raise ShapeError(f"l1_loss: target {target.shape} must match input {self.shape}")
    return _reduction((self - target).abs(), reduction, "l1_loss")


def _conv_vjp(x: Tensor, weight: Tensor, g: Tensor, stride: tuple, padding: tuple, dilation: tuple, groups: int) -> tuple:
  """Gradients of a convolution (no bias) for its output gradient g (N, C_out, *out), each one contraction:
  weight: sum over (N, *out) of g times the input windows, M = (C_in/groups, *k), N = C_out/groups (the template);
  input: for stride 1 a transposed convolution (_transposed_conv), for a strided conv the sub-pixel split
  (_subpixel_input_grad: one stride-1 correlation per input phase, all in one contraction, no stride^2 zeros).
  No column buffer, no col2im: both read g and the input through views."""
  nd = len(stride)
  n, spatial = x.shape[0], x.shape[2:]
  cout, cin_g, kernel = weight.shape[0], weight.shape[1], tuple(weight.shape[2:])
  out_sp = g.shape[2:]
  dw = dx = None
  if weight.requires_grad:
    xw = x.pad(tuple(q for p in reversed(padding) for q in (p, p)))._windows(kernel, stride, dilation)
    xw = xw.reshape((n, groups, 1, cin_g) + out_sp + kernel)
    gg = g.reshape((n, groups, cout // groups, 1) + out_sp + (1,) * nd)
    red = (0,) + tuple(range(4, 4 + nd))
    dw = (xw * gg).sum(red, dtype=g.dtype if g.dtype.is_float else None).reshape(weight.shape).cast(weight.dtype)
  if x.requires_grad:
    if any(st > 1 for st in stride): dx = _subpixel_input_grad(g, weight, spatial, stride, padding, dilation, groups)
    if dx is None: dx = _transposed_conv(g, weight, spatial, stride, padding, dilation, groups)
    dx = dx.cast(x.dtype)
  return dx, dw


def _transposed_conv(g: Tensor, weight: Tensor, spatial: tuple, stride: tuple, padding: tuple, dilation: tuple, groups: int) -> Tensor:
  """The input gradient of a convolution as a transposed convolution: the conv of g dilated by the stride (g
  reshaped to (o, 1), padded to (o, s), flattened: a masked view, zeros between rows) and padded by
  dilation * (k - 1) - padding, with the weight flipped and its channel dims swapped per group."""
  nd = len(stride)
  cout, cin_g, kernel = weight.shape[0], weight.shape[1], tuple(weight.shape[2:])
  gd = g
  for j, s in enumerate(stride):   # zeros between the rows: (o, 1) padded to (o, s), flattened, cut to (o - 1) * s + 1
    if s == 1: continue
    gd = _dilate(gd, 2 + j, s)
  pads = []
  for j in reversed(range(nd)):
    before = dilation[j] * (kernel[j] - 1) - padding[j]
    pads += [before, spatial[j] - gd.shape[2 + j] - before + dilation[j] * (kernel[j] - 1)]
  wt = weight.reshape((groups, cout // groups, cin_g) + kernel).transpose(1, 2).reshape((cin_g * groups, cout // groups) + kernel)
  wt = wt.flip(tuple(range(2, 2 + nd)))
  return gd.pad(tuple(pads))._conv_windows(wt, (1,) * nd, (0,) * nd, dilation, groups)


def _dilate(t: Tensor, dim: int, s: int) -> Tensor:
  """t with s - 1 zeros between its entries along dim (a masked view): (o, 1) padded to (o, s), flattened, cut to (o - 1) * s + 1."""
  o = t.shape[dim]
  t = t.unsqueeze(dim + 1)._movement(Ops.PAD, tuple((0, s - 1) if i == dim + 1 else (0, 0) for i in range(t.ndim + 1)))
  return t.flatten(dim, dim + 1).narrow(dim, 0, (o - 1) * s + 1)


def _index_range(t: Tensor, dim: int, lo: int, hi: int) -> Tensor:
  """Entries lo .. hi - 1 of t along dim, zeros where that range leaves [0, size): a view (shrink, then pad)."""
  a, b = max(lo, 0), min(hi, t.shape[dim])
  t = t.narrow(dim, a, b - a)
  return t._movement(Ops.PAD, tuple((a - lo, hi - b) if i == dim else (0, 0) for i in range(t.ndim)))


def _subpixel_geometry(s: int, p: int, d: int, k: int, size: int) -> Optional[tuple]:
  """One spatial dim of a strided conv's input gradient split by output phase: input index i = s * q + r gets
  sum over t of g[q + emin + t] * wd[r + p - s * (emin + t)], wd the weight dilated by d (zeros between taps).
  (emin, taps T, first and last + 1 phase r with any weight tap, Q = ceil(size / s)); None when no phase has one."""
  kd = (k - 1) * d + 1
  emin, emax = -((kd - 1 - p) // s), (s - 1 + p) // s
  used = [r for r in range(s) for e in range(emin, emax + 1) if 0 <= r + p - s * e < kd and (r + p - s * e) % d == 0]
  if not used: return None
  return emin, emax - emin + 1, min(used), max(used) + 1, -(-size // s)


def _subpixel_input_grad(g: Tensor, weight: Tensor, spatial: tuple, stride: tuple, padding: tuple, dilation: tuple,
                         groups: int) -> Optional[Tensor]:
  """The input gradient of a strided convolution without the stride^2 zeros of the transposed conv (sub-pixel
  split): the input's positions split by phase r = i mod s, each phase a stride-1 correlation of g with the weight
  taps that reach it (_subpixel_geometry). All phases are one contraction: windows of g (T taps, stride 1) times the
  phase kernels V (G, Cin_g, Cout_g, R, T per dim), a view of the weight (dilated, cut, reshaped (T, s), flipped),
  summed over (Cout_g, T); the phases land interleaved (q, r) -> s * q + r by a reshape. Phases no tap reaches are
  padding. None when some dim has none (the caller takes the transposed conv)."""
  nd = len(stride)
  n, cout, cin_g, kernel = g.shape[0], g.shape[1], weight.shape[1], tuple(weight.shape[2:])
  cout_g = cout // groups
  geo = [_subpixel_geometry(stride[j], padding[j], dilation[j], kernel[j], spatial[j]) for j in range(nd)]
  if any(gj is None for gj in geo): return None
  w = weight.reshape((groups, cout_g, cin_g) + kernel).transpose(1, 2)          # (G, Cin_g, Cout_g, *k)
  gg = g
  for j, (emin, taps, rlo, rhi, q) in enumerate(geo):
    s, p, d, dim = stride[j], padding[j], dilation[j], 3 + 2 * j               # earlier spatial dims are (T, R) pairs now
    if d > 1: w = _dilate(w, dim, d)
    base = p - s * emin - s * (taps - 1)       # wd index base + s * t' + r, with t' = taps - 1 - t
    w = _index_range(w, dim, base, base + s * taps).unflatten(dim, (taps, s)).flip(dim).narrow(dim + 1, rlo, rhi - rlo)
    gg = _index_range(gg, 2 + j, emin, emin + q + taps - 1)
  taps, phases, qs = [gj[1] for gj in geo], [gj[3] - gj[2] for gj in geo], [gj[4] for gj in geo]
  gw = gg._windows(tuple(taps), (1,) * nd, (1,) * nd)                           # (N, Cout, *Q, *T)
  gw = gw.reshape((n, groups, 1, cout_g) + tuple(v for qj in qs for v in (qj, 1)) + tuple(taps))
  v = w.permute((0, 1, 2) + tuple(4 + 2 * j for j in range(nd)) + tuple(3 + 2 * j for j in range(nd)))   # (G, Cin_g, Cout_g, *R, *T)
  v = v.reshape((1, groups, cin_g, cout_g) + tuple(x for r in phases for x in (1, r)) + tuple(taps))
  red = (3,) + tuple(range(4 + 2 * nd, 4 + 3 * nd))
  dx = (gw * v).sum(red, dtype=g.dtype if g.dtype.is_float else None)
  dx = dx.reshape((n, groups * cin_g) + tuple(x for qj, r in zip(qs, phases) for x in (qj, r)))
  dx = dx._movement(Ops.PAD, ((0, 0), (0, 0)) + tuple(pr for (_, _, rlo, rhi, _), s in zip(geo, stride) for pr in ((0, 0), (rlo, s - rhi))))
  dx = dx.reshape((n, groups * cin_g) + tuple(qj * s for qj, s in zip(qs, stride)))
  return dx.shrink(((0, n), (0, groups * cin_g)) + tuple((0, sz) for sz in spatial))


def _batch_norm_vjp(x: Tensor, weight, bias, g: Tensor, mean: Tensor, rstd: Tensor, scale: Tensor, axes: tuple, n: int) -> tuple:
  """Gradients of training-mode batch_norm for the output gradient g, from two per-channel sums, sum(g) and
  sum(g * (x - mean)) (torch's batch_norm_backward): dbias = sum(g), dweight = rstd * sum(g * (x - mean)),
  dx = scale * (g - sum(g) / n - (x - mean) * rstd^2 * sum(g * (x - mean)) / n), one elementwise pass. The composed
  graph's gradient (through mean and var) took ~10 passes over x. Tensor ops: differentiable again.
  One gradient per non-None input of (x, weight, bias)."""
  gsum = g.sum(axes, keepdim=True)
  gxc = (g * (x - mean)).sum(axes, keepdim=True)
  c = x.shape[1]
  dx = dw = db = None
  # negations on per-channel factors only: a full-size `a - b` costs a pass for -b (5 passes over x's size, not 6)
  if x.requires_grad: dx = (g - gsum * (1 / n)) * scale + (x - mean) * -(scale * rstd * rstd * gxc * (1 / n))
  if weight is not None and weight.requires_grad: dw = (gxc * rstd).reshape(c).cast(weight.dtype)
  if bias is not None and bias.requires_grad: db = gsum.reshape(c).cast(bias.dtype)
  return tuple(grad for t, grad in ((x, dx), (weight, dw), (bias, db)) if t is not None)


def _class_hit(target: Tensor, n: int, cdim: int, ndim: int) -> Tensor:
  """bool tensor shaped like the input: True at (.., target[..], ..) along the class dim."""
  t = target.unsqueeze(cdim)
  ar = target._Tensor.arange(n, device=target.device).reshape((1,) * cdim + (n,) + (1,) * (ndim - cdim - 1))
  return t.eq(ar)


def _class_target(x: Tensor, target: Tensor, ignore_index: int, op: str) -> tuple[Tensor, Tensor]:
  """(valid, safe) for class-index targets of input x (N, C, ...) or (C,): valid is target != ignore_index, safe the
  target with ignored entries set to 0, bounds-checked to [0, C) in the kernel (ignored targets are never out of range)."""
  if not isinstance(target, x._Tensor) or target.dtype.is_float: raise DTypeError(f"{op}: target must be an integer Tensor of class indices")
  cdim = 1 if x.ndim > 1 else 0
  expect = x.shape[:cdim] + x.shape[cdim + 1:]
  if target.shape != expect: raise ShapeError(f"{op}: target shape {target.shape} does not match input {x.shape} (expected {expect})")
  valid = target.ne(ignore_index)
  return valid, valid.where(target, 0)._bounds(0, x.shape[cdim], op, "target", cdim)


def _picked_nll(logp: Tensor, valid: Tensor, safe: Tensor, weight, cdim: int) -> Tensor:
  """-logp at each target's class (times its weight), 0 where the target is ignored: the loss before reduction."""
  picked = _class_hit(safe, logp.shape[cdim], cdim, logp.ndim).where(logp, 0).sum(cdim)
  loss = -picked * weight[safe] if weight is not None else -picked
  return valid.where(loss, 0)


def _finish_nll(loss: Tensor, valid: Tensor, safe: Tensor, weight, reduction: str) -> Tensor:
  if reduction == "none": return loss
  if reduction == "sum": return loss.sum()
  if reduction != "mean": raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
  denom = valid.where(weight[safe], 0).sum() if weight is not None else valid.sum()
  return loss.sum() / denom
