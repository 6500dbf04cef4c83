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
  """A Linear forward + backward + SGD step, lazy; returns the tensors its step realizes."""
  lazygrad.Tensor.manual_seed(0)
  model = nn.Linear(32, 16)
  Tensor.realize(*model.parameters())
  opt = optim.SGD(model.parameters(), lr=0.1)
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
