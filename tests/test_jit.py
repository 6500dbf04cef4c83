"""lazygrad.jit: jitted training steps give bitwise the same parameters, optimizer state, BatchNorm statistics and
losses as the same steps run plainly (>= 3 replays each), follow shape, mode and lr changes, refuse what a replay
cannot repeat; the memory planner never lets two live temporaries share bytes."""
import random
import warnings
import weakref
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor, nn, optim, GlobalCounters
from lazygrad.runtime.replay import plan_memory, peak_live_bytes


def mlp():
  return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))


def cnn():
  return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))


def batches(n, shape, classes=3, seed=0, last=None):
  rng = np.random.default_rng(seed)
  sizes = [shape[0]] * n if last is None else [shape[0]] * (n - 1) + [last]
  return [(rng.standard_normal((b, *shape[1:])).astype(np.float32), rng.integers(0, classes, b)) for b in sizes]


def train_step(model, opt):
  def step(x, y):
    opt.zero_grad()
    loss = model(x).cross_entropy(y)
    loss.backward()
    opt.step()
    return loss
  return step


def run(make_model, make_opt, data, jitted, seed=3, between=None):
  """Train a fresh model (same seed each time) on data; returns (model, opt, losses, jitted step)."""
  Tensor.manual_seed(seed)
  model = make_model()
  opt = make_opt(model.parameters())
  step = train_step(model, opt)
  if jitted: step = lazygrad.jit(step)
  losses = []
  for i, (x, y) in enumerate(data):
    if between is not None: between(i, model, opt)
    losses.append(step(Tensor(x), Tensor(y)))
  return model, opt, [l.numpy() for l in losses], step


def assert_same_state(a, b):
  for (na, ta), (nb, tb) in zip(a.state_dict().items(), b.state_dict().items()):
    assert na == nb
    np.testing.assert_array_equal(ta.numpy(), tb.numpy(), err_msg=na)


def assert_same_opt(oa, ob):
  for pa, pb in zip(oa.state, ob.state):
    sa, sb = oa.state[pa], ob.state[pb]
    assert sa.keys() == sb.keys()
    for k in sa:
      if isinstance(sa[k], Tensor): np.testing.assert_array_equal(sa[k].numpy(), sb[k].numpy(), err_msg=k)
      else: assert sa[k] == sb[k], k


def check_bitwise(make_model, make_opt, data, between=None, replays=3):
  m0, o0, l0, _ = run(make_model, make_opt, data, False, between=between)
  m1, o1, l1, step = run(make_model, make_opt, data, True, between=between)
  for a, b in zip(l0, l1): np.testing.assert_array_equal(a, b)
  assert_same_state(m0, m1)
  assert_same_opt(o0, o1)
  for p0, p1 in zip(m0.parameters(), m1.parameters()):
    assert (p0.grad is None) == (p1.grad is None)
    if p0.grad is not None: np.testing.assert_array_equal(p0.grad.numpy(), p1.grad.numpy())
  assert step.stats is not None and step.stats.replays >= replays, step.stats
  return step


def test_mlp_sgd_momentum_bitwise():
  step = check_bitwise(mlp, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), batches(7, (5, 6)))
  assert step.stats.kernels > 0 and step.stats.slots["arg"] == 2


def test_replay_counts_kernels_and_keeps_old_losses():
  Tensor.manual_seed(0)
  model = mlp()
  opt = optim.SGD(model.parameters(), lr=0.1)
  step = lazygrad.jit(train_step(model, opt))
  data = batches(6, (4, 6))
  losses = [step(Tensor(x), Tensor(y)) for x, y in data[:4]]
  kept = [l.numpy() for l in losses]
  before = GlobalCounters.kernel_count
  losses.append(step(Tensor(data[4][0]), Tensor(data[4][1])))
  assert GlobalCounters.kernel_count - before == step.stats.kernels
  losses.append(step(Tensor(data[5][0]), Tensor(data[5][1])))
  for l, k in zip(losses, kept): np.testing.assert_array_equal(l.numpy(), k)   # a replay never overwrites an old loss
  assert not np.array_equal(losses[-1].numpy(), losses[-2].numpy())


def test_replay_updates_params_in_place_unless_a_copy_shares_them():
  Tensor.manual_seed(1)
  model = mlp()
  step = lazygrad.jit(train_step(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9)))
  data = batches(8, (4, 6))
  for x, y in data[:5]: step(Tensor(x), Tensor(y))
  w = model[0].weight
  buf = weakref.ref(w.node.buffer)   # a strong reference would be a holder the replay must not overwrite
  step(Tensor(data[5][0]), Tensor(data[5][1]))
  assert step.stats.in_place == 8 and w.node.buffer is buf()   # 4 parameters and 4 momentum buffers keep theirs
  held = w.detach()   # shares w's buffer: the next replay must not overwrite it
  kept = held.numpy()
  step(Tensor(data[6][0]), Tensor(data[6][1]))
  np.testing.assert_array_equal(held.numpy(), kept)
  assert w.node.buffer is not held.node.buffer and not np.array_equal(w.numpy(), kept)


def test_cnn_batchnorm_dropout_adamw_bitwise(device):
  if device != "cpu": pytest.skip("a conv net on the Triton interpreter is slow; the MLP covers interp")
  check_bitwise(cnn, lambda ps: optim.AdamW(ps, lr=1e-2), batches(7, (4, 2, 5, 5)))


def test_last_smaller_batch_recaptures():
  data = batches(7, (5, 6), last=2) + batches(5, (5, 6), seed=1)
  step = check_bitwise(mlp, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), data)
  shapes = {k[0][2][1] for k in step.cache}   # the first Tensor argument's shape in each signature
  assert shapes == {(5, 6), (2, 6)}


def test_eval_between_replays_follows():
  def between(i, model, opt):
    if i == 5: model.eval()
    if i == 8: model.train()
  check_bitwise(cnn if False else mlp_bn, lambda ps: optim.SGD(ps, lr=0.1), batches(11, (6, 6)), between=between)


def mlp_bn():
  return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 3))


def test_lr_change_through_param_groups():
  def between(i, model, opt):
    opt.param_groups[0]["lr"] = 0.1 / (i + 1)
  check_bitwise(mlp, lambda ps: optim.Adam(ps, lr=0.1), batches(7, (5, 6)), between=between)


def test_lr_scheduler_between_replays():
  scheds = {}
  def between(i, model, opt):
    if i == 0: scheds[id(opt)] = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    else: scheds[id(opt)].step()
  check_bitwise(mlp, lambda ps: optim.SGD(ps, lr=0.2, momentum=0.5), batches(8, (5, 6)), between=between)


def test_gradient_accumulation_with_zero_grad_outside():
  def go(jitted):
    Tensor.manual_seed(4)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    def micro(x, y):
      (model(x).cross_entropy(y) / 2).backward()
      # a jitted call realizes what it changed at its end: the plain reference does the same, so both accumulate
      # the gradients from the same kernels (fused into the step instead, Triton's dot rounds differently)
      if not jitted: Tensor.realize(*[p.grad for p in model.parameters()])
    if jitted: micro = lazygrad.jit(micro)
    for i, (x, y) in enumerate(batches(16, (4, 6))):
      micro(Tensor(x), Tensor(y))
      if i % 2 == 1:
        opt.step(); opt.zero_grad()
    return model, opt, micro
  m0, o0, _ = go(False)
  m1, o1, micro = go(True)
  assert_same_state(m0, m1)
  assert_same_opt(o0, o1)
  assert micro.stats.replays >= 3


def test_grads_after_replay_with_set_to_none_outside():
  def go(jitted):
    Tensor.manual_seed(5)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    def step(x, y):
      model(x).cross_entropy(y).backward()
      opt.step()
    if jitted: step = lazygrad.jit(step)
    for x, y in batches(6, (3, 6)):
      opt.zero_grad(set_to_none=True)
      step(Tensor(x), Tensor(y))
    return model, step
  m0, _ = go(False)
  m1, step = go(True)
  assert step.stats.replays >= 3
  for p0, p1 in zip(m0.parameters(), m1.parameters()):
    np.testing.assert_array_equal(p0.numpy(), p1.numpy())
    np.testing.assert_array_equal(p0.grad.numpy(), p1.grad.numpy())


def test_host_read_inside_raises():
  model = mlp()
  @lazygrad.jit
  def step(x):
    y = model(x).sum()
    return y * y.item()
  x = Tensor(np.ones((2, 6), np.float32))
  step(x)   # the warm-up runs plainly
  with pytest.raises(RuntimeError, match=r"lazygrad.jit: .*step reads a tensor value on the host \(item\(\)"):
    step(x)


def test_nested_jit_runs_inner_plainly():
  inner = lazygrad.jit(lambda x: x * 2)
  outer = lazygrad.jit(lambda x: inner(x) + 1)
  for i in range(6):
    np.testing.assert_array_equal(outer(Tensor([float(i)])).numpy(), [2.0 * i + 1])
  assert outer.stats.replays >= 2 and inner.stats is None


def test_python_value_return_raises():
  f = lazygrad.jit(lambda x: float(1.5))
  with pytest.raises(TypeError, match="returned a float"):
    f(Tensor([1.0]))


def test_control_flow_on_python_arg_recaptures_per_value():
  def f(x, double):
    return x * 2 if double else x + 1
  g = lazygrad.jit(f)
  rng = np.random.default_rng(0)
  for i in range(12):
    a = rng.standard_normal(4).astype(np.float32)
    np.testing.assert_array_equal(g(Tensor(a), i % 3 == 0).numpy(), f(Tensor(a), i % 3 == 0).numpy())
  assert len(g.cache) == 2 and all(e.plan is not None for e in g.cache.values())


def test_changing_python_data_inside_runs_plainly():
  counter = [0]
  def f(x):
    counter[0] += 1
    return x + Tensor([float(counter[0])])
  g = lazygrad.jit(f)
  with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    outs = [g(Tensor([0.0])).item() for _ in range(6)]
  assert outs == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
  assert any("changes per call" in str(x.message) for x in w)


def test_other_device_recaptures(device):
  other = "interp" if device == "cpu" else "cpu"
  g = lazygrad.jit(lambda x: (x * 3).relu().sum())
  for dev in [device] * 4 + [other] * 4 + [device]:
    a = np.arange(6, dtype=np.float32) - 2
    out = g(Tensor(a, device=dev))
    assert out.device == dev and out.item() == 3 * (1 + 2 + 3)


def test_returns_args_and_structures():
  @lazygrad.jit
  def f(x, d):
    return {"same": x, "sum": [x + d["y"], None]}
  for i in range(5):
    x, y = Tensor(np.full(3, i, np.float32)), Tensor(np.ones(3, np.float32))
    out = f(x, {"y": y})
    assert out["same"] is x and out["sum"][1] is None
    np.testing.assert_array_equal(out["sum"][0].numpy(), np.full(3, i + 1, np.float32))


# ---- memory planning
def random_chain_fn(seed):
  rng = random.Random(seed)
  ops = [rng.choice(["exp", "mul", "add", "relu", "sum"]) for _ in range(rng.randint(4, 9))]
  def f(x, w):
    vals = [x]
    for op in ops:
      a = rng_pick(vals, seed)
      if op == "exp": v = (a * 0.1).exp()
      elif op == "mul": v = a * rng_pick(vals, seed + 1)
      elif op == "add": v = a + w
      elif op == "relu": v = (a - 0.5).relu()
      else: v = a.sum(1, keepdim=True).expand(a.shape) * 0.5
      vals.append(v.contiguous().realize())   # one kernel each: a chain with fan-out through `vals`
    return vals[-1] + vals[len(vals) // 2]
  return f


def rng_pick(vals, seed):
  return vals[(seed * 7 + len(vals) * 3) % len(vals)]


@pytest.mark.parametrize("seed", range(6))
def test_planned_equals_unplanned_on_random_graphs(seed, device):
  if device != "cpu" and seed > 1: pytest.skip("two graphs on the interpreter are enough")
  f = random_chain_fn(seed)
  planned, unplanned = lazygrad.jit(f), lazygrad.jit(f, plan_memory=False)
  rng = np.random.default_rng(seed)
  for _ in range(5):
    x, w = rng.standard_normal((4, 8)).astype(np.float32), rng.standard_normal((4, 8)).astype(np.float32)
    a = planned(Tensor(x), Tensor(w)).numpy()
    b = unplanned(Tensor(x), Tensor(w)).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, f(Tensor(x), Tensor(w)).numpy())
  assert planned.stats.replays >= 2


def test_planned_peak_below_unplanned_on_a_chain():
  def f(x):
    for _ in range(6): x = (x * 1.5 + 1).contiguous().realize()
    return x.sum()
  g = lazygrad.jit(f)
  for _ in range(4): g(Tensor(np.ones((64, 64), np.float32)))
  s = g.stats
  assert s.slots["temp"] >= 5
  assert s.planned_bytes < s.unplanned_bytes and s.planned_bytes <= 2 * 64 * 64 * 4 and s.min_bytes <= s.planned_bytes


@pytest.mark.parametrize("seed", range(20))
def test_plan_memory_never_overlaps_live_values(seed, device):
  if device != "cpu": pytest.skip("pure Python: once is enough")
  rng = random.Random(seed)
  temps = []
  for vid in range(rng.randint(1, 30)):
    first = rng.randint(0, 40)
    temps.append((vid, first, first + rng.randint(0, 10), rng.randint(1, 5000), rng.choice(["cpu", "cuda"])))
  assign, blocks = plan_memory(temps)
  for a in temps:
    assert blocks[assign[a[0]]][0] == a[4] and blocks[assign[a[0]]][1] >= a[3]
    for b in temps:
      if a[0] < b[0] and assign[a[0]] == assign[b[0]]: assert a[2] < b[1] or b[2] < a[1]
  assert sum(n for _, n in blocks) >= peak_live_bytes([t for t in temps if t[4] == "cpu"])


def test_out_of_range_target_in_a_replay_raises_and_changes_nothing():
  Tensor.manual_seed(2)
  model = mlp()
  step = lazygrad.jit(train_step(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9)))
  data = batches(8, (4, 6))
  for x, y in data[:5]: step(Tensor(x), Tensor(y))
  assert step.stats.replays >= 1
  before = [p.numpy() for p in model.parameters()]
  with pytest.raises(IndexError, match="out of bounds"):
    step(Tensor(data[5][0]), Tensor(np.array([0, 1, 7, 2])))
  for p, b in zip(model.parameters(), before): np.testing.assert_array_equal(p.numpy(), b)
  replays = step.stats.replays
  step(Tensor(data[6][0]), Tensor(data[6][1]))   # the next replay runs from the unchanged state
  assert step.stats.replays == replays + 1


_scale = None


def test_state_tensor_replaced_recaptures():
  global _scale
  _scale = Tensor(np.float32(2.0))   # on the test's device
  g = lazygrad.jit(lambda x: x * _scale)
  x = Tensor(np.arange(3, dtype=np.float32))
  for _ in range(5): np.testing.assert_array_equal(g(x).numpy(), np.arange(3) * 2.0)
  assert g.stats.replays >= 1
  _scale = Tensor(np.float32(3.0))   # the captured holder dies: the next call captures again
  for _ in range(5): np.testing.assert_array_equal(g(x).numpy(), np.arange(3) * 3.0)
  assert g.stats.replays >= 1
