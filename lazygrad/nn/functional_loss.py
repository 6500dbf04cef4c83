"""The losses of torch.nn.functional, with torch's names, signatures and defaults (re-exported by
lazygrad.nn.functional). Cross entropy, NLL, BCE, MSE and L1 are Tensor methods; the rest are
composed here from Tensor ops, so their gradients, fusion and devices come for free."""
from __future__ import annotations
from typing import Optional
from lazygrad.tensor import Tensor

__all__ = ["cross_entropy", "linear_cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
           "cosine_embedding_loss", "poisson_nll_loss", "gaussian_nll_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
           "multilabel_soft_margin_loss", "multilabel_margin_loss", "multi_margin_loss"]


def legacy_reduction(size_average, reduce, reduction: str) -> str:
  """torch's reading of the deprecated size_average/reduce flags: either given overrides reduction."""
  if size_average is None and reduce is None: return reduction
  size_average = True if size_average is None else size_average
  reduce = True if reduce is None else reduce
  return "none" if not reduce else "mean" if size_average else "sum"


def reduce_loss(loss: Tensor, reduction: str, op: str) -> Tensor:
  """The elementwise loss reduced as torch's reduction= says ('mean', 'sum' or 'none')."""
  if reduction == "mean": return loss.mean()
  if reduction == "sum": return loss.sum()
  if reduction == "none": return loss
  raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same(op: str, input: Tensor, target: Tensor) -> None:
  if not isinstance(input, Tensor) or not isinstance(target, Tensor): raise TypeError(f"{op}: input and target must be Tensors")
  if input.shape != target.shape: raise ValueError(f"{op}: target {target.shape} must have the input's shape {input.shape}")


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
  """F.cross_entropy on logits (N, C, ...) or (C,): class-index targets (weight, ignore_index) or class probabilities."""
  return input.cross_entropy(target, weight, ignore_index, legacy_reduction(size_average, reduce, reduction), label_smoothing)


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *, linear_bias: Optional[Tensor] = None,
                         weight: Optional[Tensor] = None, reduction: str = "mean", ignore_index: Optional[int] = None,
                         label_smoothing: float = 0.0, options=None) -> Tensor:
  """F.linear_cross_entropy: cross_entropy(linear(input, linear_weight, linear_bias), target, ...), torch's reference
  definition (the logits are one lazy value; the scheduler decides what is stored). input (N, in) or (in,), linear_weight (C, in)."""
  if linear_weight.ndim != 2 or input.ndim not in (1, 2):
    raise ValueError(f"linear_cross_entropy: expects input (N, in) or (in,) and linear_weight (C, in), got {input.shape} and {linear_weight.shape}")
  logits = input.linear(linear_weight, linear_bias)
  return cross_entropy(logits, target, weight, ignore_index=-100 if ignore_index is None else ignore_index, reduction=reduction,
                       label_smoothing=label_smoothing)


def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
  """F.nll_loss on log-probabilities (N, C, ...) or (C,) with class-index targets."""
  return input.nll_loss(target, weight, ignore_index, legacy_reduction(size_average, reduce, reduction))


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean", weight: Optional[Tensor] = None) -> Tensor:
  """F.mse_loss: squared differences (times weight, if given), reduced."""
  if weight is None: return input.mse_loss(target, legacy_reduction(size_average, reduce, reduction))
  return reduce_loss((input - target).square() * weight, legacy_reduction(size_average, reduce, reduction), "mse_loss")


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean", weight: Optional[Tensor] = None) -> Tensor:
  """F.l1_loss: absolute differences (times weight, if given), reduced."""
  if weight is None: return input.l1_loss(target, legacy_reduction(size_average, reduce, reduction))
  return reduce_loss((input - target).abs() * weight, legacy_reduction(size_average, reduce, reduction), "l1_loss")


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
  """F.smooth_l1_loss: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (beta=0 is the L1 loss)."""
  _check_same("smooth_l1_loss", input, target)
  if beta < 0: raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
  d = (input - target).abs()
  loss = d if beta == 0 else (d < beta).where(0.5 * d * d / beta, d - 0.5 * beta)
  return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction), "smooth_l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Optional[Tensor] = None) -> Tensor:
  """F.huber_loss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta) (= delta * smooth_l1 with beta=delta)."""
  _check_same("huber_loss", input, target)
  if delta <= 0: raise ValueError(f"huber_loss: delta must be positive, got {delta}")
  d = (input - target).abs()
  loss = (d < delta).where(0.5 * d * d, delta * (d - 0.5 * delta))
  return reduce_loss(loss * weight if weight is not None else loss, reduction, "huber_loss")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
  """F.binary_cross_entropy on probabilities (each log clamped at -100, as torch)."""
  return input.binary_cross_entropy(target, weight, legacy_reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight: Optional[Tensor] = None) -> Tensor:
  """F.binary_cross_entropy_with_logits: sigmoid + BCE in one stable expression, with weight and pos_weight."""
  return input.binary_cross_entropy_with_logits(target, weight, legacy_reduction(size_average, reduce, reduction), pos_weight)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False) -> Tensor:
  """F.kl_div(input=log q, target=p): p (log p - log q) elementwise (0 where p = 0, as torch's xlogy);
  reduction 'batchmean' divides the sum by the batch size (torch's 'mean' divides by every element, as here)."""
  if not isinstance(input, Tensor) or not isinstance(target, Tensor): raise TypeError("kl_div: input and target must be Tensors")
  if log_target: loss = target.exp() * (target - input)
  else: loss = (target > 0).where(target * ((target > 0).where(target, 1).log() - input), 0) + (target < 0).where(float("nan"), 0)
  reduction = legacy_reduction(size_average, reduce, reduction)
  if reduction == "batchmean": return loss.sum() / (input.shape[0] if input.ndim else 1)
  return reduce_loss(loss, reduction, "kl_div")


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
  """F.margin_ranking_loss: max(0, -y (x1 - x2) + margin)."""
  return reduce_loss((-target * (input1 - input2) + margin).relu(), legacy_reduction(size_average, reduce, reduction), "margin_ranking_loss")


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
  """F.hinge_embedding_loss: x where y = 1, max(0, margin - x) where y = -1 (torch adds both terms, masked by y)."""
  loss = (target != 1).where((margin - input).relu(), 0) + (target != -1).where(input, 0)
  return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction), "hinge_embedding_loss")


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
  """F.soft_margin_loss: log(1 + exp(-y x)), as a softplus (finite for large margins)."""
  return reduce_loss((-target * input).softplus(threshold=float("inf")), legacy_reduction(size_average, reduce, reduction), "soft_margin_loss")


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, size_average=None, reduce=None,
                          reduction: str = "mean") -> Tensor:
  """F.cosine_embedding_loss: 1 - cos(x1, x2) where y = 1, max(0, cos - margin) where y = -1 (cos over the last dim,
  torch's eps 1e-12 on the squared norms)."""
  eps = 1e-12
  d = input1.ndim - 1
  prod = (input1 * input2).sum(d)
  cos = prod / ((input1 * input1).sum(d) + eps).sqrt() / ((input2 * input2).sum(d) + eps).sqrt()
  loss = (target == 1).where(1 - cos, 0) + (target == -1).where((cos - margin).relu(), 0)
  return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction), "cosine_embedding_loss")


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False, size_average=None, eps: float = 1e-8,
                     reduce=None, reduction: str = "mean") -> Tensor:
  """F.poisson_nll_loss: exp(x) - y x (log_input) or x - y log(x + eps); full adds Stirling's term where y > 1."""
  loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
  if full:
    safe = (target > 1).where(target, 2)
    stirling = safe * safe.log() - safe + 0.5 * (2 * 3.141592653589793 * safe).log()
    loss = loss + (target > 1).where(stirling, 0)
  return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction), "poisson_nll_loss")


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> Tensor:
  """F.gaussian_nll_loss: 0.5 (log(max(var, eps)) + (x - y)^2 / max(var, eps)) (+ 0.5 log(2 pi) when full); the clamp
  passes no gradient to var where it bites, as torch's (done under no_grad there)."""
  if not isinstance(var, Tensor): var = input._const_like(float(var))
  if var.ndim == input.ndim - 1 and var.shape == input.shape[:-1]: var = var.unsqueeze(-1)
  if (var < 0).any().item(): raise ValueError("gaussian_nll_loss: var has negative entries")
  v = var.maximum(eps) if not var.requires_grad else var + (var.detach().maximum(eps) - var.detach())
  loss = 0.5 * (v.log() + (input - target).square() / v)
  if full: loss = loss + 0.5 * 1.8378770664093453   # log(2 pi)
  return reduce_loss(loss, reduction, "gaussian_nll_loss")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
  """F.triplet_margin_loss: max(d(a, p) - d(a, n) + margin, 0) with the pairwise p-norm distance (eps added to the difference)."""
  def dist(a, b): return ((a - b + eps).abs() ** p).sum(-1) ** (1 / p)
  d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
  if swap: d_neg = d_neg.minimum(dist(positive, negative))
  return reduce_loss((d_pos - d_neg + margin).relu(), legacy_reduction(size_average, reduce, reduction), "triplet_margin_loss")


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *, distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
  """F.triplet_margin_with_distance_loss: max(d(a, p) - d(a, n) + margin, 0) with any distance function (default: the
  pairwise L2 distance, eps 1e-6, as F.pairwise_distance)."""
  def pairwise(a, b): return ((a - b + 1e-6) ** 2).sum(-1).sqrt()
  dist = distance_function or pairwise
  d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
  if swap: d_neg = d_neg.minimum(dist(positive, negative))
  return reduce_loss((d_pos - d_neg + margin).relu(), reduction, "triplet_margin_with_distance_loss")


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
  """F.multilabel_soft_margin_loss: the mean over classes of the per-class BCE with logits."""
  loss = -(target * input.logsigmoid() + (1 - target) * (-input).logsigmoid())
  if weight is not None: loss = loss * weight
  return reduce_loss(loss.mean(-1), legacy_reduction(size_average, reduce, reduction), "multilabel_soft_margin_loss")


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
  """F.multilabel_margin_loss on (N, C) or (C,): target holds class indices, ended by the first -1; the loss sums
  max(0, 1 - (x[y] - x[i])) over target classes y and non-target classes i, divided by C."""
  x = input if input.ndim == 2 else input.unsqueeze(0)
  y = target if target.ndim == 2 else target.unsqueeze(0)
  if y.shape != x.shape or y.dtype.is_float:
    raise ValueError(f"multilabel_margin_loss: target must be integer class indices of the input's shape {input.shape}, got {target.shape}")
  c = x.shape[1]
  valid = (y != -1).cast(x.dtype).cumprod(1) > 0                                   # the entries before the first -1
  hit = valid.unsqueeze(-1) & y.unsqueeze(-1).eq(Tensor.arange(c, device=x.device))  # (N, slot j, class i)
  is_target = hit.any(1)                                                           # (N, C)
  x_y = hit.where(x.unsqueeze(1), 0).sum(-1)                                        # x at each slot's class (N, C)
  margins = (1 - (x_y.unsqueeze(-1) - x.unsqueeze(1))).relu()                       # (N, slot j, class i)
  pair = valid.unsqueeze(-1) & ~is_target.unsqueeze(1)
  loss = pair.where(margins, 0).sum((1, 2)) / c
  return reduce_loss(loss if input.ndim == 2 else loss.squeeze(0), legacy_reduction(size_average, reduce, reduction), "multilabel_margin_loss")


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Optional[Tensor] = None, size_average=None,
                      reduce=None, reduction: str = "mean") -> Tensor:
  """F.multi_margin_loss on (N, C) or (C,): sum over i != y of max(0, margin - x[y] + x[i])^p / C (times weight[y])."""
  if p not in (1, 2): raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
  x = input if input.ndim == 2 else input.unsqueeze(0)
  y = target.reshape(x.shape[0])
  c = x.shape[1]
  hit = y.unsqueeze(-1).eq(Tensor.arange(c, device=x.device).reshape(1, c))
  xy = hit.where(x, 0).sum(-1, keepdim=True)
  m = (margin - xy + x).relu() ** p
  if weight is not None: m = m * weight[y].unsqueeze(-1)
  loss = hit.where(0, m).sum(-1) / c
  return reduce_loss(loss if input.ndim == 2 else loss.squeeze(0), legacy_reduction(size_average, reduce, reduction), "multi_margin_loss")
