"""optim vs torch.optim: same model, same data -> same parameters after 3 steps; lr
schedules equal torch's; one realize per step; a failing step changes nothing."""
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, nn, optim
from helpers import compare
from conftest import DEVICES


def on_interp_only_if(device, keep: bool) -> None:
  """Triton's interpreter is slow: there only a representative case of a family runs."""
  if device == "interp" and not keep: pytest.skip("interp runs a representative case of this family")


def device_independent(device) -> None:
  """Pure-Python behaviour (schedulers, argument checks): checked on the first device only."""
  if device != DEVICES[0]: pytest.skip(f"device-independent: checked on {DEVICES[0]}")


def _models(seed=0):
  torch.manual_seed(seed)
  tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
  lm = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
  lm.load_state_dict(tm.state_dict())
  return tm, lm


def _data(step):
  rng = np.random.default_rng(step)
  return rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)


def run_both(make_t, make_l, steps=3, sched=None):
  """Train both copies `steps` steps; return the two models (and lr sequences if sched)."""
  tm, lm = _models()
  topt, lopt = make_t(tm.parameters()), make_l(lm.parameters())
  tsch, lsch = (sched[0](topt), sched[1](lopt)) if sched else (None, None)
  for s in range(steps):
    x, y = _data(s)
    tloss = torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
    topt.zero_grad(); tloss.backward(); topt.step()
    lloss = lm(Tensor(x)).cross_entropy(Tensor(y))
    lopt.zero_grad(); lloss.backward(); lopt.step()
    compare(np.array(lloss.item()), np.array(tloss.item()), 1e-5, 1e-6, f"loss at step {s}")   # read after step(): pre-update value
    if sched: tsch.step(); lsch.step()
  return tm, lm


def assert_same_params(tm, lm, rtol=1e-5, atol=1e-6):
  lp = dict(lm.named_parameters())
  for name, p in tm.named_parameters(): compare(lp[name].numpy(), p.detach().numpy(), rtol, atol, name)


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, dampening=0.3),
             dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, momentum=0.5, weight_decay=0.1),
             dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)]

@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd(kw, device):
  on_interp_only_if(device, kw is SGD_CASES[-1])
  assert_same_params(*run_both(lambda p: torch.optim.SGD(p, **kw), lambda p: optim.SGD(p, **kw)))

ADAM_CASES = [dict(), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1), dict(lr=0.01, amsgrad=True),
              dict(lr=0.01, maximize=True)]

@pytest.mark.parametrize("kw", ADAM_CASES)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam(name, kw, device):
  on_interp_only_if(device, (name, kw) in (("Adam", ADAM_CASES[3]), ("AdamW", ADAM_CASES[0])))
  assert_same_params(*run_both(lambda p: getattr(torch.optim, name)(p, **kw), lambda p: getattr(optim, name)(p, **kw)))

def test_defaults_match_torch(device):
  device_independent(device)
  p = Tensor.ones(2, requires_grad=True)
  tp = torch.ones(2, requires_grad=True)
  for name in ("SGD", "Adam", "AdamW"):
    ours, theirs = getattr(optim, name)([p]).defaults, getattr(torch.optim, name)([tp]).defaults
    for k, v in ours.items(): assert theirs[k] == v, (name, k)

def test_param_groups(device):
  on_interp_only_if(device, False)
  tm, lm = _models()
  def groups(m): return [{"params": m[0].parameters(), "lr": 0.3}, {"params": m[2].parameters()}]
  topt, lopt = torch.optim.SGD(groups(tm), lr=0.1, momentum=0.9), optim.SGD(groups(lm), lr=0.1, momentum=0.9)
  for s in range(3):
    x, y = _data(s)
    topt.zero_grad(); torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(y)).backward(); topt.step()
    lopt.zero_grad(); lm(Tensor(x)).cross_entropy(Tensor(y)).backward(); lopt.step()
  assert_same_params(tm, lm)


# ---- one schedule, all or nothing
def test_step_is_one_realize(monkeypatch):
  _, lm = _models()
  opt = optim.Adam(lm.parameters(), lr=0.01)
  calls = []
  real = lazygrad.runtime.executor.realize_nodes
  monkeypatch.setattr(lazygrad.runtime.executor, "realize_nodes", lambda nodes: (calls.append(len(nodes)), real(nodes))[1])
  for s in range(2):
    x, y = _data(s)
    lm(Tensor(x)).cross_entropy(Tensor(y)).backward()
    calls.clear()
    opt.step()
    assert len(calls) == 1, f"step {s}: {len(calls)} realize calls"
    assert all(p.is_realized and p.grad.is_realized for p in lm.parameters())
    assert all(t.is_realized for st in opt.state.values() for t in st.values() if isinstance(t, Tensor))
    opt.zero_grad()

def test_batchnorm_running_stats_realized_by_step(device):
  on_interp_only_if(device, False)
  m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
  opt = optim.SGD(m.parameters(), lr=0.1)
  for s in range(2):
    m(Tensor(np.random.default_rng(s).standard_normal((5, 3)).astype(np.float32))).sum().backward()
    opt.step(); opt.zero_grad()
    assert m[1].running_mean.is_realized and m[1].num_batches_tracked.is_realized
  assert m[1].num_batches_tracked.item() == 2

def test_lr_change_keeps_kernels():
  """A new lr is a runtime value: the second step with another lr compiles no new kernel."""
  from lazygrad.runtime import get_device
  if lazygrad.Tensor.zeros(1).device != "cpu": pytest.skip("counts the numpy compile cache")
  _, lm = _models()
  opt = optim.SGD(lm.parameters(), lr=0.1, momentum=0.9)
  sizes = []
  for lr in (0.1, 0.1, 0.05, 0.01):
    opt.param_groups[0]["lr"] = lr
    x, y = _data(0)
    lm(Tensor(x)).cross_entropy(Tensor(y)).backward()
    opt.step(); opt.zero_grad()
    sizes.append(len(get_device("cpu")._fns))
  assert sizes[1] == sizes[2] == sizes[3], sizes

def _snap(m): return [p.numpy() for p in m.parameters()]

@pytest.mark.parametrize("break_it", ["grad_shape", "lr", "grad_dtype"])
def test_failed_step_changes_nothing(break_it, device):
  on_interp_only_if(device, break_it == "grad_shape")
  _, lm = _models()
  opt = optim.SGD(lm.parameters(), lr=0.1, momentum=0.9)
  x, y = _data(0)
  lm(Tensor(x)).cross_entropy(Tensor(y)).backward(); opt.step(); opt.zero_grad()   # state exists
  lm(Tensor(x)).cross_entropy(Tensor(y)).backward()
  before, bufs = _snap(lm), [st["momentum_buffer"].numpy() for st in opt.state.values()]
  params = list(lm.parameters())
  if break_it == "grad_shape": params[-1].grad = Tensor.zeros(5)
  if break_it == "lr": opt.param_groups[0]["lr"] = -1.0
  if break_it == "grad_dtype": params[-1].grad = Tensor.zeros(3).int()
  with pytest.raises((ValueError, TypeError)): opt.step()
  for a, b in zip(_snap(lm), before): np.testing.assert_array_equal(a, b)
  for a, st in zip(bufs, opt.state.values()): np.testing.assert_array_equal(st["momentum_buffer"].numpy(), a)

def test_bad_hyperparameters(device):
  device_independent(device)
  p = [Tensor.ones(2, requires_grad=True)]
  with pytest.raises(ValueError): optim.SGD(p, lr=-1)
  with pytest.raises(ValueError): optim.SGD(p, lr=0.1, nesterov=True)
  with pytest.raises(ValueError): optim.Adam(p, betas=(1.0, 0.9))
  with pytest.raises(ValueError): optim.AdamW([], lr=0.1)
  with pytest.raises(ValueError): optim.SGD([Tensor.ones(2)], lr=0.1)          # does not require grad
  with pytest.raises(TypeError): optim.SGD(Tensor.ones(2, requires_grad=True), lr=0.1)

def test_zero_grad_set_to_none_false(device):
  on_interp_only_if(device, False)
  p = Tensor.ones(3, requires_grad=True)
  opt = optim.SGD([p], lr=0.5, momentum=0.9)
  (p * 2).sum().backward(); opt.step()
  opt.zero_grad(set_to_none=False)
  np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3))
  np.testing.assert_allclose(opt.state[p]["momentum_buffer"].numpy(), np.full(3, 2.0))   # the buffer never aliases the grad


# ---- schedulers
def _lrs(make_opt, make_sched, steps, sgd=True):
  out = []
  opt = make_opt()
  sch = make_sched(opt)
  for _ in range(steps):
    g = opt.param_groups[0]
    out.append((sch.get_last_lr()[0], g.get("momentum", g.get("betas", (None,))[0])))
    sch.step()
  return out

@pytest.mark.parametrize("name,kw,opt,steps", [
  ("StepLR", dict(step_size=3, gamma=0.5), "SGD", 10),
  ("CosineAnnealingLR", dict(T_max=5, eta_min=0.001), "SGD", 13),
  ("OneCycleLR", dict(max_lr=0.5, total_steps=12), "SGD", 12),
  ("OneCycleLR", dict(max_lr=0.01, total_steps=10, anneal_strategy="linear", three_phase=True, pct_start=0.25), "Adam", 10),
  ("OneCycleLR", dict(max_lr=0.1, epochs=2, steps_per_epoch=4, cycle_momentum=False), "AdamW", 8)])
@pytest.mark.filterwarnings("ignore:Detected call of")
def test_lr_scheduler_matches_torch(name, kw, opt, steps, device):
  device_independent(device)
  opt_kw = dict(lr=0.1, momentum=0.9) if opt == "SGD" else dict(lr=0.01)
  ours = _lrs(lambda: getattr(optim, opt)([Tensor.ones(2, requires_grad=True)], **opt_kw),
              lambda o: getattr(optim.lr_scheduler, name)(o, **kw), steps)
  theirs = _lrs(lambda: getattr(torch.optim, opt)([torch.ones(2, requires_grad=True)], **opt_kw),
                lambda o: getattr(torch.optim.lr_scheduler, name)(o, **kw), steps)
  assert ours == theirs

def test_scheduler_drives_training_like_torch(device):
  on_interp_only_if(device, False)
  sched = (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3), lambda o: optim.lr_scheduler.CosineAnnealingLR(o, T_max=3))
  assert_same_params(*run_both(lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9), lambda p: optim.SGD(p, lr=0.2, momentum=0.9),
                               sched=sched))

def test_onecycle_too_many_steps(device):
  device_independent(device)
  sch = optim.lr_scheduler.OneCycleLR(optim.SGD([Tensor.ones(1, requires_grad=True)], lr=0.1, momentum=0.9), max_lr=1.0, total_steps=2)
  sch.step(); sch.step()
  with pytest.raises(ValueError, match="total steps"): sch.step()


# ---- optimizer state dict
def test_optimizer_state_dict_round_trip(device):
  on_interp_only_if(device, False)
  _, a = _models()
  opt = optim.Adam(a.parameters(), lr=0.01)
  x, y = _data(0)
  a(Tensor(x)).cross_entropy(Tensor(y)).backward(); opt.step()
  sd = opt.state_dict()
  _, b = _models()
  b.load_state_dict(a.state_dict())
  opt2 = optim.Adam(b.parameters(), lr=0.5)
  opt2.load_state_dict(sd)
  assert opt2.param_groups[0]["lr"] == 0.01
  for m, o in ((a, opt), (b, opt2)):
    o.zero_grad(); m(Tensor(x)).cross_entropy(Tensor(y)).backward(); o.step()
  for pa, pb in zip(a.parameters(), b.parameters()): np.testing.assert_allclose(pa.numpy(), pb.numpy(), rtol=1e-6)
