"""Losses of lazygrad.nn.functional and the loss modules of lazygrad.nn against torch: every reduction, weights,
ignore_index, label smoothing, the deprecated size_average/reduce flags; values and gradients."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import lazygrad
import lazygrad.nn as ln
import lazygrad.nn.functional as LF
from lazygrad import Tensor
from helpers import helper_test_op, make_inputs, compare

REDUCTIONS = ["mean", "sum", "none"]


def same(shapes, fn, **kw):
  """fn(F, *inputs) with torch's and lazygrad's F."""
  return helper_test_op(shapes, lambda *a: fn(TF, *a), lambda *a: fn(LF, *a), **kw)


def targets(seed=0):
  """(labels (4, 3) in {0, 1} as float, signs (4,) in {-1, 1}, class ids (4,), class ids with -100)."""
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 2, (4, 3)).astype(np.float32), np.array([1, -1, -1, 1], np.float32), np.array([2, 0, 1, 2]),
          np.array([2, -100, 1, 0]))


PAIR_LOSSES = [
  ("mse", lambda F, x, y, r: F.mse_loss(x, y, reduction=r)), ("l1", lambda F, x, y, r: F.l1_loss(x, y, reduction=r)),
  ("smooth_l1", lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.7)),
  ("smooth_l1_beta0", lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.0)),
  ("huber", lambda F, x, y, r: F.huber_loss(x, y, reduction=r, delta=0.6)),
  ("kl_div", lambda F, x, y, r: F.kl_div(x.log_softmax(-1), y.softmax(-1), reduction=r)),
  ("kl_div_log_target", lambda F, x, y, r: F.kl_div(x.log_softmax(-1), y.log_softmax(-1), reduction=r, log_target=True)),
  ("bce", lambda F, x, y, r: F.binary_cross_entropy(x.sigmoid(), y.sigmoid(), reduction=r)),
  ("bce_logits", lambda F, x, y, r: F.binary_cross_entropy_with_logits(x, y.sigmoid(), reduction=r)),
  ("soft_margin", lambda F, x, y, r: F.soft_margin_loss(x, y.sign().detach(), reduction=r)),
  ("poisson", lambda F, x, y, r: F.poisson_nll_loss(x, y.abs(), reduction=r)),
  ("poisson_full", lambda F, x, y, r: F.poisson_nll_loss(x.abs() + 0.1, (y * 3).abs().round(), log_input=False, full=True, reduction=r)),
  ("gaussian_nll", lambda F, x, y, r: F.gaussian_nll_loss(x, y, (x * y).abs() + 0.01, reduction=r)),
  ("gaussian_nll_full", lambda F, x, y, r: F.gaussian_nll_loss(x, y, torch.ones(4, 1) * 0.5 if F is TF else Tensor.ones(4, 1) * 0.5,
                                                                full=True, reduction=r)),
  ("multilabel_soft_margin", lambda F, x, y, r: F.multilabel_soft_margin_loss(x, (y > 0).float(), reduction=r)),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,fn", PAIR_LOSSES, ids=[p[0] for p in PAIR_LOSSES])
def test_pair_loss(name, fn, reduction, device):
  if device == "interp" and reduction != "mean": pytest.skip("interp runs the 'mean' case of each loss (the Triton interpreter is slow)")
  same([(4, 3), (4, 3)], lambda F, x, y: fn(F, x, y, reduction))


def test_kl_div_batchmean_and_legacy_flags():
  same([(4, 3), (4, 3)], lambda F, x, y: F.kl_div(x.log_softmax(-1), y.softmax(-1), reduction="batchmean"))
  same([(4, 3), (4, 3)], lambda F, x, y: F.mse_loss(x, y, size_average=False))
  same([(4, 3), (4, 3)], lambda F, x, y: F.l1_loss(x, y, reduce=False))


def test_bce_weights():
  w = make_inputs([(3,)], low=0.1, high=1.0, seed=5)[0]
  same([(4, 3), (4, 3)], lambda F, x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), weight=torch.tensor(w) if F is TF else Tensor(w),
                                                                            pos_weight=torch.tensor(w * 2) if F is TF else Tensor(w * 2)))
  same([(4, 3), (4, 3)], lambda F, x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid(), weight=torch.tensor(w) if F is TF else Tensor(w)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sign_target_losses(reduction):
  _, sign, _, _ = targets()
  same([(4,), (4,)], lambda F, a, b: F.margin_ranking_loss(a, b, (torch.tensor if F is TF else Tensor)(sign), margin=0.3, reduction=reduction))
  same([(4,)], lambda F, a: F.hinge_embedding_loss(a, (torch.tensor if F is TF else Tensor)(sign), margin=0.5, reduction=reduction))
  same([(4, 3), (4, 3)], lambda F, a, b: F.cosine_embedding_loss(a, b, (torch.tensor if F is TF else Tensor)(sign), margin=0.1,
                                                                  reduction=reduction))
  same([(4, 3), (4, 3), (4, 3)], lambda F, a, p, n: F.triplet_margin_loss(a, p, n, margin=0.5, swap=True, reduction=reduction))
  same([(4, 3), (4, 3), (4, 3)], lambda F, a, p, n: F.triplet_margin_with_distance_loss(a, p, n, swap=True, reduction=reduction))
  same([(4, 3), (4, 3), (4, 3)], lambda F, a, p, n: F.triplet_margin_with_distance_loss(
    a, p, n, distance_function=lambda u, v: (u - v).abs().sum(-1), margin=0.2, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_class_losses(reduction):
  _, _, cls, cls_ign = targets()
  w = make_inputs([(3,)], low=0.1, high=1.0, seed=5)[0]
  def T(F, a): return (torch.tensor if F is TF else Tensor)(a)
  same([(4, 3)], lambda F, x: F.cross_entropy(x, T(F, cls_ign), weight=T(F, w), reduction=reduction, label_smoothing=0.2))
  same([(4, 3)], lambda F, x: F.nll_loss(x.log_softmax(1), T(F, cls_ign), reduction=reduction))
  same([(4, 3)], lambda F, x: F.multi_margin_loss(x, T(F, cls), reduction=reduction))
  ml = np.array([[2, -1, 0], [0, 1, 2], [-1, 1, 1], [1, 1, -1]])   # a repeated class and entries after -1, as torch allows
  same([(4, 3)], lambda F, x: F.multilabel_margin_loss(x, T(F, ml), reduction=reduction))
  same([(3,)], lambda F, x: F.multilabel_margin_loss(x, T(F, ml[0]), reduction=reduction))
  same([(4, 3)], lambda F, x: F.multi_margin_loss(x, T(F, cls), p=2, margin=0.5, weight=T(F, w), reduction=reduction))


def test_linear_cross_entropy():
  _, _, cls, cls_ign = targets()
  def T(F, a): return (torch.tensor if F is TF else Tensor)(a)
  same([(4, 5), (3, 5), (3,)], lambda F, x, w, b: F.linear_cross_entropy(x, w, T(F, cls), linear_bias=b, label_smoothing=0.1))
  same([(4, 5), (3, 5)], lambda F, x, w: F.linear_cross_entropy(x, w, T(F, cls_ign), ignore_index=-100, reduction="sum"))
  same([(5,), (3, 5)], lambda F, x, w: F.linear_cross_entropy(x, w, T(F, cls[0])))


def test_label_smoothing_out_of_range():
  with pytest.raises(ValueError, match="label_smoothing"):
    LF.cross_entropy(Tensor.zeros(2, 3), Tensor([0, 1]), label_smoothing=1.5)


# ---- modules: construction arguments reach the functional form; weights are buffers, as torch's
MODULES = [
  ("CrossEntropyLoss", {"label_smoothing": 0.1, "ignore_index": 1}, "cls"), ("NLLLoss", {"reduction": "sum"}, "cls_logp"),
  ("MSELoss", {}, "float"), ("L1Loss", {"reduction": "none"}, "float"), ("BCELoss", {}, "prob"), ("BCEWithLogitsLoss", {}, "prob_logits"),
  ("SmoothL1Loss", {"beta": 0.5}, "float"), ("HuberLoss", {"delta": 0.5}, "float"), ("KLDivLoss", {"reduction": "batchmean"}, "kl"),
  ("SoftMarginLoss", {}, "sign"), ("MultiLabelSoftMarginLoss", {}, "labels"), ("MultiMarginLoss", {"margin": 0.5}, "cls"),
  ("PoissonNLLLoss", {}, "float"), ("NLLLoss2d", {}, "cls_logp"), ("MultiLabelMarginLoss", {"reduction": "sum"}, "multilabel"),
]


@pytest.mark.parametrize("name,kwargs,kind", MODULES, ids=[m[0] for m in MODULES])
def test_loss_module(name, kwargs, kind, device):
  if device == "interp" and MODULES.index((name, kwargs, kind)) % 3: pytest.skip("interp runs every third module (slow interpreter)")
  labels, _, cls, _ = targets()
  x, y = make_inputs([(4, 3), (4, 3)])
  def run(nn, T):
    xt = T(x, requires_grad=True)
    m = getattr(nn, name)(**kwargs)
    inp, tgt = {"cls": (xt, T(cls)), "cls_logp": (xt.log_softmax(1), T(cls)), "float": (xt, T(y)), "prob": (xt.sigmoid(), T(labels)),
                "prob_logits": (xt, T(labels)), "kl": (xt.log_softmax(1), T(y).softmax(1)), "sign": (xt, T(np.sign(y))),
                "labels": (xt, T(labels)), "multilabel": (xt, T(np.array([[2, -1, 0], [0, 1, 2], [-1, 1, 1], [1, 0, -1]])))}[kind]
    out = m(inp, tgt)
    out.sum().backward()
    return out, xt.grad
  (to, tg), (lo, lg) = run(torch.nn, torch.tensor), run(ln, Tensor)
  compare(lo.numpy(), to.detach().numpy(), 1e-5, 1e-6, "loss")
  compare(lg.numpy(), tg.numpy(), 1e-4, 1e-5, "grad")


def test_weighted_loss_state_dict_matches_torch():
  w = np.array([0.2, 1.0, 3.0], np.float32)
  assert list(ln.CrossEntropyLoss(weight=Tensor(w)).state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.tensor(w)).state_dict())
  assert list(ln.BCEWithLogitsLoss(pos_weight=Tensor(w)).state_dict()) == ["pos_weight"]
  assert list(ln.MSELoss().state_dict()) == []
  assert repr(ln.CrossEntropyLoss()) == repr(torch.nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


def test_loss_on_module_api_namespace():
  # the module-level names a torch training script uses
  assert lazygrad.nn.functional is LF and ln.CrossEntropyLoss is lazygrad.nn.loss.CrossEntropyLoss
