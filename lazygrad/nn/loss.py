"""Loss modules of torch.nn (CrossEntropyLoss, MSELoss, ...): each forward is the lazygrad.nn.functional
loss with the settings given at construction; class weights are buffers, as torch's."""
from __future__ import annotations
from typing import Optional
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn import functional as F
from lazygrad.nn.functional_loss import legacy_reduction


class _Loss(Module):
  """torch's _Loss: holds reduction ('mean', 'sum' or 'none'; the deprecated size_average/reduce override it)."""
  def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
    super().__init__()
    self.reduction = legacy_reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
  """torch's _WeightedLoss: a loss with an optional class-weight buffer `weight`."""
  def __init__(self, weight: Optional[Tensor] = None, size_average=None, reduce=None, reduction: str = "mean"):
    super().__init__(size_average, reduce, reduction)
    self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
  """torch.nn.CrossEntropyLoss: F.cross_entropy(input, target) on logits (N, C, ...) with class-index or probability targets."""
  def __init__(self, weight: Optional[Tensor] = None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean",
               label_smoothing: float = 0.0):
    super().__init__(weight, size_average, reduce, reduction)
    self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of logits `input` against `target`."""
    return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                           label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
  """torch.nn.NLLLoss: F.nll_loss(input, target) on log-probabilities."""
  def __init__(self, weight: Optional[Tensor] = None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"):
    super().__init__(weight, size_average, reduce, reduction)
    self.ignore_index = ignore_index
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of log-probabilities `input` against class indices `target`."""
    return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
  """torch.nn.MSELoss: mean squared error."""
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of `input` against `target`."""
    return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
  """torch.nn.L1Loss: mean absolute error."""
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of `input` against `target`."""
    return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
  """torch.nn.BCELoss: binary cross entropy on probabilities (weight rescales each element)."""
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of probabilities `input` against `target`."""
    return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
  """torch.nn.BCEWithLogitsLoss: sigmoid + binary cross entropy in one stable expression; weight and pos_weight are buffers."""
  def __init__(self, weight: Optional[Tensor] = None, size_average=None, reduce=None, reduction: str = "mean",
               pos_weight: Optional[Tensor] = None):
    super().__init__(size_average, reduce, reduction)
    self.register_buffer("weight", weight)
    self.register_buffer("pos_weight", pos_weight)
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of logits `input` against `target`."""
    return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight)


class SmoothL1Loss(_Loss):
  """torch.nn.SmoothL1Loss: quadratic below beta, linear above."""
  def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
    super().__init__(size_average, reduce, reduction)
    self.beta = beta
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of `input` against `target`."""
    return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
  """torch.nn.HuberLoss: quadratic below delta, delta-scaled linear above."""
  def __init__(self, reduction: str = "mean", delta: float = 1.0):
    super().__init__(reduction=reduction)
    self.delta = delta
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of `input` against `target`."""
    return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
  """torch.nn.KLDivLoss: KL divergence of log-probabilities `input` from `target` (reduction 'batchmean' as torch)."""
  def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
    super().__init__(size_average, reduce, reduction)
    self.log_target = log_target
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of `input` against `target`."""
    return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MarginRankingLoss(_Loss):
  """torch.nn.MarginRankingLoss: max(0, -y (x1 - x2) + margin)."""
  def __init__(self, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean"):
    super().__init__(size_average, reduce, reduction)
    self.margin = margin
  def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
    """The loss of the pair (input1, input2) ranked by `target` (+1 or -1)."""
    return F.margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
  """torch.nn.HingeEmbeddingLoss."""
  def __init__(self, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean"):
    super().__init__(size_average, reduce, reduction)
    self.margin = margin
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of `input` against labels `target` (+1 or -1)."""
    return F.hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
  """torch.nn.SoftMarginLoss: log(1 + exp(-y x))."""
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of `input` against labels `target` (+1 or -1)."""
    return F.soft_margin_loss(input, target, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
  """torch.nn.CosineEmbeddingLoss."""
  def __init__(self, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean"):
    super().__init__(size_average, reduce, reduction)
    self.margin = margin
  def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
    """The loss of the pair (input1, input2) labelled by `target` (+1 similar, -1 dissimilar)."""
    return F.cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
  """torch.nn.PoissonNLLLoss."""
  def __init__(self, log_input: bool = True, full: bool = False, size_average=None, eps: float = 1e-8, reduce=None, reduction: str = "mean"):
    super().__init__(size_average, reduce, reduction)
    self.log_input, self.full, self.eps = log_input, full, eps
  def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
    """The loss of rates (or log-rates) against counts `target`."""
    return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
  """torch.nn.GaussianNLLLoss."""
  def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
    super().__init__(reduction=reduction)
    self.full, self.eps = full, eps
  def forward(self, input: Tensor, target: Tensor, var) -> Tensor:
    """The loss of means `input` with variances `var` against `target`."""
    return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class TripletMarginLoss(_Loss):
  """torch.nn.TripletMarginLoss."""
  def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
               reduction: str = "mean"):
    super().__init__(size_average, reduce, reduction)
    self.margin, self.p, self.eps, self.swap = margin, p, eps, swap
  def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    """The loss of the triplet (anchor, positive, negative)."""
    return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p, eps=self.eps, swap=self.swap,
                                 reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
  """torch.nn.TripletMarginWithDistanceLoss: the triplet loss with any distance function (default pairwise L2)."""
  def __init__(self, *, distance_function=None, margin: float = 1.0, swap: bool = False, reduction: str = "mean"):
    super().__init__(reduction=reduction)
    self.distance_function, self.margin, self.swap = distance_function, margin, swap
  def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    """The loss of the triplet (anchor, positive, negative)."""
    return F.triplet_margin_with_distance_loss(anchor, positive, negative, distance_function=self.distance_function, margin=self.margin,
                                               swap=self.swap, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
  """torch.nn.MultiLabelSoftMarginLoss."""
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of logits `input` (N, C) against 0/1 labels `target`."""
    return F.multilabel_soft_margin_loss(input, target, self.weight, reduction=self.reduction)


class NLLLoss2d(NLLLoss):
  """torch.nn.NLLLoss2d (deprecated in torch): NLLLoss."""


class MultiLabelMarginLoss(_Loss):
  """torch.nn.MultiLabelMarginLoss: class-index targets ended by -1 (see F.multilabel_margin_loss)."""
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of scores `input` (N, C) against the target classes `target` (N, C)."""
    return F.multilabel_margin_loss(input, target, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
  """torch.nn.MultiMarginLoss."""
  def __init__(self, p: int = 1, margin: float = 1.0, weight: Optional[Tensor] = None, size_average=None, reduce=None,
               reduction: str = "mean"):
    super().__init__(weight, size_average, reduce, reduction)
    self.p, self.margin = p, margin
  def forward(self, input: Tensor, target: Tensor) -> Tensor:
    """The loss of scores `input` (N, C) against class indices `target`."""
    return F.multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight, reduction=self.reduction)


__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss", "HuberLoss", "KLDivLoss",
           "MarginRankingLoss", "HingeEmbeddingLoss", "SoftMarginLoss", "CosineEmbeddingLoss", "PoissonNLLLoss", "GaussianNLLLoss",
           "TripletMarginLoss", "TripletMarginWithDistanceLoss", "MultiLabelSoftMarginLoss", "MultiLabelMarginLoss", "NLLLoss2d", "MultiMarginLoss"]
