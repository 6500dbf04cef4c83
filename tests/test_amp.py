"""Mixed precision (lazygrad/amp.py) against torch.amp on the CPU: autocast's output dtypes op by op,
values and float32 gradients of a small conv/attention/linear model, nesting, threads, no extra kernels;
GradScaler step by step against torch.amp.GradScaler("cpu"), including a skipped step and growth.

The Triton 3.9 interpreter computes bf16 arithmetic wrongly (bf16 is stored as uint16 and multiplied as
integers), so bf16 values are checked on cpu only; dtypes (known without running) on every device."""
import threading
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import lazygrad
from lazygrad import Tensor, dtypes, autocast, GlobalCounters
from lazygrad.amp import GradScaler, is_autocast_enabled, get_autocast_dtype
from lazygrad import nn, optim
from helpers import compare

LOW = {"bf16": (dtypes.bfloat16, torch.bfloat16), "fp16": (dtypes.float16, torch.float16)}
TOL = {"bf16": 3e-2, "fp16": 3e-3}


def skip_bf16_interp(device, low):
  if device == "interp" and low == "bf16": pytest.skip("Triton 3.9's interpreter computes bf16 arithmetic wrongly (bf16 is multiplied as uint16)")


def rand(*shape, seed=0, scale=1.0):
  return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# (name, torch fn, lazygrad fn, input shapes); every fn takes (x, *params) with x first, all float32 arrays
CE_TARGET = np.array([0, 3, 1, 2])
OPS = [
  ("matmul", lambda x, w: x @ w, lambda x, w: x @ w, [(4, 8), (8, 5)]),
  ("linear", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x.linear(w, b), [(4, 8), (5, 8), (5,)]),
  ("bmm", lambda x, w: torch.bmm(x, w), lambda x, w: x.bmm(w), [(2, 4, 8), (2, 8, 3)]),
  ("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: x.conv2d(w, b, padding=1), [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]),
  ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
   lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True), [(2, 5, 8), (2, 5, 8), (2, 5, 8)]),
  ("sdpa_float_mask", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
   lambda q, k, v, m: q.scaled_dot_product_attention(k, v, attn_mask=m), [(2, 5, 8), (2, 6, 8), (2, 6, 8), (5, 6)]),
  ("softmax", lambda x: x.softmax(-1), lambda x: x.softmax(-1), [(4, 8)]),
  ("log_softmax", lambda x: x.log_softmax(-1), lambda x: x.log_softmax(-1), [(4, 8)]),
  ("layer_norm", lambda x, w, b: F.layer_norm(x, (8,), w, b), lambda x, w, b: x.layer_norm((8,), w, b), [(4, 8), (8,), (8,)]),
  ("cross_entropy", lambda x: F.cross_entropy(x, torch.tensor(CE_TARGET)), lambda x: x.cross_entropy(Tensor(CE_TARGET)), [(4, 5)]),
  ("mse_loss", lambda x, y: F.mse_loss(x, y), lambda x, y: x.mse_loss(y), [(4, 5), (4, 5)]),
  ("l1_loss", lambda x, y: F.l1_loss(x, y), lambda x, y: x.l1_loss(y), [(4, 5), (4, 5)]),
  ("bce_with_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid()),
   lambda x, y: x.binary_cross_entropy_with_logits(y.sigmoid()), [(4, 5), (4, 5)]),
  ("prod", lambda x: x.prod(-1), lambda x: x.prod(-1), [(4, 3)]),
  ("cumprod", lambda x: x.cumprod(1), lambda x: x.cumprod(1), [(4, 3)]),
  ("sum", lambda x: x.sum(), lambda x: x.sum(), [(4, 8)]),
  ("mean", lambda x: x.mean(0), lambda x: x.mean(0), [(4, 8)]),
  ("exp", lambda x: x.exp(), lambda x: x.exp(), [(4, 8)]),
  ("relu", lambda x: x.relu(), lambda x: x.relu(), [(4, 8)]),
  ("add_mixed", lambda x, y: x + y, lambda x, y: x + y, [(4, 8), (4, 8)]),
]


def _lowered(arrays, first_low, low_t, low_l):
  """torch and lazygrad inputs: float32, the first one cast to the low dtype when first_low (an op's input under
  autocast usually comes out of a matmul in the low dtype)."""
  tts = [torch.tensor(a) for a in arrays]
  lts = [Tensor(a) for a in arrays]
  if first_low: tts[0], lts[0] = tts[0].to(low_t), lts[0].cast(low_l)
  return tts, lts


@pytest.mark.parametrize("first_low", [False, True], ids=["f32_in", "low_in"])
@pytest.mark.parametrize("low", ["bf16", "fp16"])
@pytest.mark.parametrize("name,tfn,lfn,shapes", OPS, ids=[o[0] for o in OPS])
def test_autocast_op_dtype_and_value(name, tfn, lfn, shapes, low, first_low, device):
  """Each op's output dtype under autocast is torch.autocast('cpu')'s, and its value is close to torch's."""
  low_l, low_t = LOW[low]
  arrays = [rand(*s, seed=i) for i, s in enumerate(shapes)]
  tts, lts = _lowered(arrays, first_low, low_t, low_l)
  with torch.autocast("cpu", dtype=low_t): tout = tfn(*tts)
  with autocast(device, dtype=low_l): lout = lfn(*lts)
  assert lout.dtype == dtypes.from_any(tout.dtype), f"{name}: {lout.dtype} != torch {tout.dtype}"
  skip_bf16_interp(device, low)
  compare(lout.float().numpy(), tout.float().numpy(), TOL[low], TOL[low], name)


def _model_params(seed=0):
  return {"cw": rand(4, 3, 3, 3, seed=seed, scale=0.3), "cb": rand(4, seed=seed + 1, scale=0.1), "lw": rand(6, 16, seed=seed + 2, scale=0.3),
          "lb": rand(6, seed=seed + 3, scale=0.1), "ln_w": 1 + rand(16, seed=seed + 4, scale=0.1), "ln_b": rand(16, seed=seed + 5, scale=0.1)}


def _model(F_conv, x, p, target, sdpa, layer_norm, linear, ce):
  """conv -> relu -> (tokens) layer_norm -> causal self-attention -> linear -> cross-entropy, torch or lazygrad."""
  h = F_conv(x, p["cw"], p["cb"]).relu()                     # (2, 4, 4, 4)
  tokens = h.reshape(2, 4, 16)                               # 4 tokens of width 16 per image
  tokens = layer_norm(tokens, p["ln_w"], p["ln_b"])
  a = sdpa(tokens, tokens, tokens)
  logits = linear(a.reshape(8, 16), p["lw"], p["lb"])
  return ce(logits, target)


@pytest.mark.parametrize("low", ["bf16", "fp16"])
def test_autocast_model_matches_torch_with_fp32_grads(low, device):
  """A conv/attention/linear model: the loss and the float32 parameters' float32 gradients match torch.autocast's."""
  skip_bf16_interp(device, low)
  low_l, low_t = LOW[low]
  ps = _model_params()
  x, target = rand(2, 3, 4, 4, seed=9), np.array([0, 1, 2, 3, 4, 5, 0, 1])
  tp = {k: torch.tensor(v, requires_grad=True) for k, v in ps.items()}
  lp = {k: Tensor(v, requires_grad=True) for k, v in ps.items()}
  with torch.autocast("cpu", dtype=low_t):
    tl = _model(lambda x, w, b: F.conv2d(x, w, b, padding=1), torch.tensor(x), tp, torch.tensor(target),
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                lambda t, w, b: F.layer_norm(t, (16,), w, b), F.linear, F.cross_entropy)
  with autocast(device, dtype=low_l):
    ll = _model(lambda x, w, b: x.conv2d(w, b, padding=1), Tensor(x), lp, Tensor(target),
                lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True),
                lambda t, w, b: t.layer_norm((16,), w, b), lambda a, w, b: a.linear(w, b), lambda a, t: a.cross_entropy(t))
  assert ll.dtype == dtypes.float32 and tl.dtype == torch.float32
  tl.backward()
  ll.backward()
  compare(ll.numpy(), tl.detach().numpy(), TOL[low], TOL[low], "loss")
  for k in ps:
    assert lp[k].grad.dtype == dtypes.float32, f"{k}: gradient dtype {lp[k].grad.dtype}"
    g = tp[k].grad.numpy()
    compare(lp[k].grad.numpy(), g, 2 * TOL[low], 2 * TOL[low] * max(1.0, float(np.abs(g).max())), f"grad {k}")


def test_autocast_nesting_disabling_and_decorator(device):
  """Regions nest (the innermost wins, enabled=False turns it off inside), the decorator form opens a region
  per call, the dtype may be passed positionally, and leaving restores the outer state."""
  x, w = Tensor(rand(3, 4)), Tensor(rand(4, 2))
  assert (x @ w).dtype == dtypes.float32 and not is_autocast_enabled()
  with autocast(dtype=dtypes.bfloat16):
    assert (x @ w).dtype == dtypes.bfloat16 and get_autocast_dtype() == dtypes.bfloat16
    with autocast(dtype=dtypes.bfloat16, enabled=False):
      assert (x @ w).dtype == dtypes.float32 and not is_autocast_enabled()
      with lazygrad.amp.autocast(dtypes.float16): assert (x @ w).dtype == dtypes.float16
      assert (x @ w).dtype == dtypes.float32
    assert (x @ w).dtype == dtypes.bfloat16
  assert (x @ w).dtype == dtypes.float32

  @autocast("cpu", dtype=torch.float16)      # torch dtypes are accepted too
  def f(a, b): return a @ b
  assert f(x, w).dtype == dtypes.float16 and (x @ w).dtype == dtypes.float32
  region = autocast(dtype="bfloat16")
  with region:
    with region: assert (x @ w).dtype == dtypes.bfloat16   # the same object entered twice
    assert (x @ w).dtype == dtypes.bfloat16
  assert (x @ w).dtype == dtypes.float32
  with pytest.raises(RuntimeError):
    with autocast(dtype=dtypes.float16): raise RuntimeError("leaves the region")
  assert not is_autocast_enabled()


def test_autocast_float64_and_ints_untouched(device):
  """torch casts neither float64 nor integer tensors; a float64 matmul stays float64."""
  a, b = Tensor(rand(3, 4).astype(np.float64)), Tensor(rand(4, 2).astype(np.float64))
  with autocast(dtype=dtypes.float16):
    assert (a @ b).dtype == dtypes.float64
    assert (Tensor(np.arange(12).reshape(3, 4)) @ Tensor(np.arange(8).reshape(4, 2))).dtype == dtypes.int64


def test_autocast_is_thread_local(device):
  """One thread's region does not reach another thread, as torch's."""
  x, w = Tensor(rand(3, 4)), Tensor(rand(4, 2))
  seen, ready, done = {}, threading.Event(), threading.Event()
  def other():
    seen["outside_while_main_in"] = (x @ w).dtype
    with autocast(dtype=dtypes.float16):
      ready.set()
      done.wait(10)
      seen["inside"] = (x @ w).dtype
  t = threading.Thread(target=other)
  with autocast(dtype=dtypes.bfloat16):
    t.start()
    ready.wait(10)
    assert (x @ w).dtype == dtypes.bfloat16   # the other thread's float16 region does not reach here
    done.set()
    t.join()
  assert seen == {"outside_while_main_in": dtypes.float32, "inside": dtypes.float16}
  assert (x @ w).dtype == dtypes.float32


def test_autocast_errors(device):
  with pytest.raises(ValueError, match="float16 or bfloat16"): autocast(dtype=dtypes.float32)
  with pytest.raises(ValueError, match="unknown device"): autocast("tpu", dtype=dtypes.float16)
  with pytest.raises(TypeError, match="enabled"): autocast(dtype=dtypes.float16, enabled="yes")


def _linear_step(low):
  """A Linear forward + backward, lazy; returns the loss and the gradients (what a step realizes)."""
  lazygrad.Tensor.manual_seed(0)
  model = nn.Linear(32, 16)
  Tensor.realize(*model.parameters())
  x, y = Tensor(rand(8, 32)), Tensor(rand(8, 16))
  with autocast(dtype=low, enabled=low is not None): loss = model(x).mse_loss(y)
  loss.backward()
  return [loss] + [p.grad for p in model.parameters()]


@pytest.mark.parametrize("low", ["bf16", "fp16"])
def test_autocast_adds_no_kernels(low, device):
  """The casts fuse into their consumers (the matmul template's prologue): an autocast Linear forward + backward
  schedules exactly as many kernels as the float32 one, and no low-precision copy of the weight is stored."""
  ref = lazygrad.schedule(*_linear_step(None))
  items = lazygrad.schedule(*_linear_step(LOW[low][0]))
  assert len(items) == len(ref), f"autocast: {[i.name for i in items]} vs float32: {[i.name for i in ref]}"
  assert sum(i.name.startswith("mm") for i in items) == sum(i.name.startswith("mm") for i in ref) >= 2
  assert not [i for i in items if i.out.dtype == LOW[low][0] and i.shape == (16, 32)], "a cast weight was stored"


def test_autocast_training_step_kernel_count(device):
  """With the optimizer step and the loss read (realized): autocast runs no more kernels than float32 (fp16 runs on interp)."""
  counts = []
  for low in (None, dtypes.float16):
    Tensor.manual_seed(0)
    model = nn.Linear(32, 16)
    Tensor.realize(*model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = Tensor(rand(8, 32)), Tensor(rand(8, 16))
    for _ in range(2):   # the second step: momentum buffers exist
      GlobalCounters.reset()
      with autocast(dtype=low or dtypes.float16, enabled=low is not None): loss = model(x).mse_loss(y)
      opt.zero_grad()
      loss.backward()
      opt.step()
      assert np.isfinite(loss.item())
    counts.append(GlobalCounters.kernel_count)
    assert model.weight.grad.dtype == dtypes.float32 and model.weight.dtype == dtypes.float32
  assert counts[1] <= counts[0], counts


# ---- GradScaler against torch.amp.GradScaler("cpu")

def _scaler_pair(opt_name, **kw):
  """A Linear(6, 3) model, its optimizer and a GradScaler, in torch and lazygrad from the same weights."""
  w, b = rand(3, 6, seed=1, scale=0.5), rand(3, seed=2, scale=0.1)
  tm, lm = torch.nn.Linear(6, 3), nn.Linear(6, 3)
  with torch.no_grad(): tm.weight.copy_(torch.tensor(w)); tm.bias.copy_(torch.tensor(b))
  lm.weight.assign(Tensor(w)); lm.bias.assign(Tensor(b))
  Tensor.realize(lm.weight, lm.bias)
  if opt_name == "sgd": topt, lopt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9), optim.SGD(lm.parameters(), lr=0.1, momentum=0.9)
  else: topt, lopt = torch.optim.Adam(tm.parameters(), lr=0.05), optim.Adam(lm.parameters(), lr=0.05)
  return (tm, topt, torch.amp.GradScaler("cpu", **kw)), (lm, lopt, GradScaler(**kw))


def _scaler_step(m, opt, scaler, x, y, lib, clip=None):
  opt.zero_grad()
  out = m(x)
  loss = F.mse_loss(out, y) if lib is torch else out.mse_loss(y)
  scaler.scale(loss).backward()
  if clip is not None:
    scaler.unscale_(opt)
    (torch.nn.utils.clip_grad_norm_ if lib is torch else nn.utils.clip_grad_norm_)(m.parameters(), clip)
  scaler.step(opt)
  scaler.update()


@pytest.mark.parametrize("opt_name,clip", [("sgd", None), ("adam", None), ("adam", 0.5)])
def test_grad_scaler_matches_torch_step_by_step(opt_name, clip, device):
  """Growth after growth_interval clean steps, an inf in the input (a nan loss: the step is skipped, no parameter or
  optimizer state changes, the scale backs off and the growth count restarts), then growth again; the
  parameters, the scale and the state dict equal torch's after every step (Adam's step count skips too)."""
  (tm, topt, ts), (lm, lopt, ls) = _scaler_pair(opt_name, init_scale=2.0 ** 8, growth_interval=2)
  for step in range(7):
    x, y = rand(4, 6, seed=10 + step), rand(4, 3, seed=20 + step)
    if step == 3: x[1, 2] = np.inf
    before = lm.weight.numpy().copy()
    _scaler_step(tm, topt, ts, torch.tensor(x), torch.tensor(y), torch, clip)
    _scaler_step(lm, lopt, ls, Tensor(x), Tensor(y), lazygrad, clip)
    if step == 3: np.testing.assert_array_equal(lm.weight.numpy(), before)
    assert ls.get_scale() == ts.get_scale(), f"step {step}: scale {ls.get_scale()} != torch {ts.get_scale()}"
    assert ls.state_dict() == ts.state_dict(), step
    compare(lm.weight.numpy(), tm.weight.detach().numpy(), 1e-5, 1e-6, f"weight after step {step}")
    compare(lm.bias.numpy(), tm.bias.detach().numpy(), 1e-5, 1e-6, f"bias after step {step}")
  assert ls.get_scale() == 2.0 ** 8 * 2 * 0.5 * 2   # grown at step 1, backed off at 3, grown at 5


def test_grad_scaler_one_host_sync_per_step(device, monkeypatch):
  """step() reads the inf/nan check once: one .item() per step, with the gradients, the check and the forward's
  pending outputs realized together before the optimizer's own schedule."""
  (_, _, _), (lm, lopt, ls) = _scaler_pair("sgd")
  reads = []
  orig = Tensor.item
  monkeypatch.setattr(Tensor, "item", lambda self: reads.append(self.shape) or orig(self))
  out = lm(Tensor(rand(4, 6)))
  ls.scale(out.mse_loss(Tensor(rand(4, 3)))).backward()
  ls.step(lopt)
  assert out.is_realized and lm.weight.grad.is_realized
  ls.update()
  assert len(reads) == 1, reads


def test_grad_scaler_float16_training_runs(device):
  """autocast(float16) + GradScaler on a Linear model: finite losses, fp32 parameters and gradients, loss goes down."""
  Tensor.manual_seed(0)
  model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
  opt = optim.SGD(model.parameters(), lr=0.05)
  scaler = GradScaler(init_scale=2.0 ** 12)
  x, y = Tensor(rand(32, 8)), Tensor(rand(32, 8)[:, :1])
  losses = []
  for _ in range(5):
    opt.zero_grad()
    with autocast(dtype=dtypes.float16): loss = model(x).mse_loss(y)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    losses.append(loss.item())
  assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
  assert all(p.dtype == dtypes.float32 and p.grad.dtype == dtypes.float32 for p in model.parameters())


def test_grad_scaler_errors_and_disabled(device):
  """torch's misuse errors, state_dict round trips (also to and from torch's), enabled=False passes through."""
  (tm, topt, ts), (lm, lopt, ls) = _scaler_pair("sgd")
  with pytest.raises(AssertionError, match="scale"): ls.unscale_(lopt)           # before any scale()
  ls.scale(lm(Tensor(rand(4, 6))).sum()).backward()
  ls.unscale_(lopt)
  with pytest.raises(RuntimeError, match="already been called"): ls.unscale_(lopt)
  ls.step(lopt)
  with pytest.raises(RuntimeError, match="after step"): ls.unscale_(lopt)
  with pytest.raises(RuntimeError, match="step\\(\\) has already"): ls.step(lopt)
  ls.update()
  with pytest.raises(AssertionError, match="No inf checks"): ls.update()
  with pytest.raises(ValueError, match="growth factor"): GradScaler(growth_factor=0.5)
  with pytest.raises(ValueError, match="backoff factor"): GradScaler(backoff_factor=2.0)
  ls.update(new_scale=3.0)
  assert ls.get_scale() == 3.0
  ts.load_state_dict(ls.state_dict())
  assert ts.get_scale() == 3.0
  fresh = GradScaler()
  fresh.load_state_dict(ts.state_dict())
  assert fresh.state_dict() == ts.state_dict()
  with pytest.raises(RuntimeError, match="empty"): fresh.load_state_dict({})
  off = GradScaler(enabled=False)
  loss = lm(Tensor(rand(4, 6))).sum()
  assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {} and not off.is_enabled()
  assert isinstance(ls.scale([loss, (loss,)])[1], tuple)


class _TinyGPT(nn.Module):
  """Embedding (tied head), a pre-norm block (LayerNorm, causal attention, GELU MLP), LayerNorm, cross-entropy."""
  def __init__(self, vocab=20, width=16, heads=2):
    super().__init__()
    self.heads = heads
    self.emb, self.pos = nn.Embedding(vocab, width), nn.Embedding(8, width)
    self.ln1, self.ln2, self.ln_f = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
    self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
    self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

  def forward(self, idx, targets):
    B, T = idx.shape
    x = self.emb(idx) + self.pos.weight[:T]
    C, H = x.shape[-1], self.heads
    q, k, v = [t.reshape(B, T, H, C // H).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(C, dim=-1)]
    x = x + self.proj(q.scaled_dot_product_attention(k, v, is_causal=True).transpose(1, 2).reshape(B, T, C))
    x = x + self.fc2(self.fc1(self.ln2(x)).gelu(approximate="tanh"))
    return self.ln_f(x).linear(self.emb.weight).reshape(B * T, -1).cross_entropy(targets.reshape(B * T))


def _conv_bn_net():
  return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                       nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


@pytest.mark.parametrize("model", ["gpt", "conv_bn"])
def test_autocast_adds_no_kernels_transformer_and_convnet(model, device):
  """A transformer block with a tied head and a conv/BatchNorm net: the forward + backward schedule under autocast
  has exactly as many kernels as in float32 (casts of stored values, shared and broadcast operands fuse into the
  kernels that read them; a half-float matmul's epilogue runs on through the cast back to float32), except the
  cpu device's stored conv-input casts."""
  rng = np.random.default_rng(0)
  counts = []
  for low in (None, dtypes.bfloat16):
    Tensor.manual_seed(0)
    net = _TinyGPT() if model == "gpt" else _conv_bn_net()
    params = list(net.parameters())
    Tensor.realize(*params)
    with autocast(dtype=dtypes.bfloat16, enabled=low is not None):
      if model == "gpt": loss = net(Tensor(rng.integers(0, 20, (2, 8))), Tensor(rng.integers(0, 20, (2, 8))))
      else: loss = net(Tensor(rand(4, 1, 8, 8))).cross_entropy(Tensor(np.arange(4)))
    loss.backward()
    assert all(p.grad.dtype == dtypes.float32 for p in params)
    counts.append(lazygrad.schedule(loss, *[p.grad for p in params]))
  extra = len(counts[1]) - len(counts[0])
  if device == "cpu" and model == "conv_bn":
    # the numpy device stores a value read through overlapping windows (it would be evaluated over the k*k window
    # space): there, each conv input's bf16 cast is a kernel of its own (2 convs); Triton devices fuse it
    casts = [i for i in counts[1] if i.name.startswith("E_") and i.out.dtype == dtypes.bfloat16 and i.reason.name == "MULTI_VIEW"]
    assert extra == len(casts) == 2, [i.name for i in counts[1]]
  else: assert extra == 0, ([i.name for i in counts[0]], [i.name for i in counts[1]])


def test_autocast_training_step_compiles_to_tensor_cores_for_hopper(device):
  """Every contraction of an autocast Linear training step (float32 master weights, the casts in the template's prologue,
  the update of W reading dW) takes the matmul template and dots on tensor cores once compiled for sm_90."""
  if device != "interp": pytest.skip("compiled once, from the interp run")
  from lazygrad.kernels.triton.matmul import template_ok
  from helpers import compile_for_hopper, hopper_job
  jobs, tags = [], []
  for low in (dtypes.float16, dtypes.bfloat16):
    Tensor.manual_seed(0)
    model = nn.Linear(64, 96)
    Tensor.realize(*model.parameters())
    x = Tensor(rand(128, 64)).requires_grad_()
    with autocast(dtype=low): out = model(x).relu()
    (out.float() * Tensor(rand(128, 96))).sum().backward()
    plan = [it.kernel for it in lazygrad.schedule(x.grad, *[p - 0.1 * p.grad for p in model.parameters()]) if it.kernel.contraction is not None]
    assert len(plan) >= 3, [k.name for k in plan]   # forward, dX, dW
    for k in plan:
      assert template_ok(k), k.name
      jobs.append(hopper_job(k))
      tags.append(f"{low.name}:{k.name}")
  for tag, res in zip(tags, compile_for_hopper(jobs)):
    assert {"wgmma", "mma.sync"} & set(res["ptx_has"]), (tag, res["ptx_has"])
