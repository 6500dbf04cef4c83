"""nn layers vs torch.nn: same weights (copied through load_state_dict), same inputs ->
same outputs, input gradients and parameter gradients; state dicts, checkpoints, init."""
import math
import numpy as np
import pytest
import torch
from lazygrad import Tensor, nn, dtypes
from helpers import compare
from conftest import DEVICES


def _flat(out):
  """A module's outputs as a flat list of tensors (MHA and LSTM return tuples)."""
  if isinstance(out, (tuple, list)): return [t for o in out for t in _flat(o)]
  return [] if out is None else [out]


def check_layer(tm: torch.nn.Module, lm: nn.Module, *arrays, train: bool = False, rtol=1e-4, atol=1e-5, grad=True, kwargs=None,
                int_inputs=(), grad_rtol=None, grad_atol=None):
  """Copy tm's weights into lm, run both on `arrays`, compare outputs, input and parameter grads."""
  kwargs = kwargs or {}
  lm.load_state_dict(tm.state_dict())
  tm.train(train); lm.train(train)
  tin = [torch.tensor(a, requires_grad=grad and i not in int_inputs) for i, a in enumerate(arrays)]
  lin = [Tensor(a, requires_grad=grad and i not in int_inputs) for i, a in enumerate(arrays)]
  touts = _flat(tm(*tin, **{k: v[0] if isinstance(v, tuple) else v for k, v in kwargs.items()}))
  louts = _flat(lm(*lin, **{k: v[1] if isinstance(v, tuple) else v for k, v in kwargs.items()}))
  assert len(touts) == len(louts), f"{len(louts)} outputs, torch {len(touts)}"
  for i, (t, l) in enumerate(zip(touts, louts)):
    compare(l.numpy(), t.detach().numpy(), rtol, atol, f"output {i}")
  if not grad: return
  rng = np.random.default_rng(1)
  projs = [rng.standard_normal(t.shape).astype(np.float32) for t in touts]
  sum(((t * torch.tensor(p)).sum() for t, p in zip(touts, projs) if t.requires_grad)).backward()
  sum(((l * Tensor(p)).sum() for l, p in zip(louts, projs) if l.requires_grad)).backward()
  grtol, gatol = grad_rtol or rtol * 10, grad_atol or atol * 10
  for i, (t, l) in enumerate(zip(tin, lin)):
    if i in int_inputs: continue
    compare(l.grad.numpy(), t.grad.numpy(), grtol, gatol, f"grad of input {i}")
  lparams = dict(lm.named_parameters())
  for name, tp in tm.named_parameters():
    lg = lparams[name].grad
    if tp.grad is None: assert lg is None, name; continue
    compare(lg.numpy(), tp.grad.numpy(), grtol, gatol, f"grad of {name}")


def on_interp_only_if(device, keep: bool) -> None:
  """Triton's interpreter is slow: there only a representative case of a family runs."""
  if device == "interp" and not keep: pytest.skip("interp runs a representative case of this family")


def device_independent(device) -> None:
  """Pure-Python behaviour (names, argument checks): checked on the first device only."""
  if device != DEVICES[0]: pytest.skip(f"device-independent: checked on {DEVICES[0]}")


def rand(*shape, seed=0, low=-2.0, high=2.0):
  return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


# ---- weighted layers
@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias, device):
  on_interp_only_if(device, bias)
  check_layer(torch.nn.Linear(5, 3, bias=bias), nn.Linear(5, 3, bias=bias), rand(4, 5))

def test_linear_batched_3d(device):
  on_interp_only_if(device, False)
  check_layer(torch.nn.Linear(6, 4), nn.Linear(6, 4), rand(2, 3, 6))

@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2, bias=False), dict(groups=2, padding=(1, 0))])
def test_conv2d(kw, device):
  on_interp_only_if(device, "groups" in kw or "stride" in kw)
  check_layer(torch.nn.Conv2d(4, 6, 3, **kw), nn.Conv2d(4, 6, 3, **kw), rand(2, 4, 7, 6))

@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding(padding_idx):
  tm, lm = torch.nn.Embedding(7, 4, padding_idx=padding_idx), nn.Embedding(7, 4, padding_idx=padding_idx)
  idx = np.array([[0, 1, 3], [6, 1, 1]], dtype=np.int64)
  check_layer(tm, lm, idx, int_inputs=(0,))
  if padding_idx is not None: assert np.all(lm.weight.grad.numpy()[padding_idx] == 0)

def test_embedding_init_zero_padding_row():
  e = nn.Embedding(5, 3, padding_idx=2)
  w = e.weight.numpy()
  assert np.all(w[2] == 0) and np.all(w[[0, 1, 3, 4]] != 0)


# ---- normalisation
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5)])
def test_batchnorm1d_train_and_running_stats(shape, device):
  on_interp_only_if(device, len(shape) == 3)
  tm, lm = torch.nn.BatchNorm1d(4), nn.BatchNorm1d(4)
  tm.weight.data.uniform_(0.5, 1.5); tm.bias.data.uniform_(-1, 1)
  check_layer(tm, lm, rand(*shape), train=True)
  for name in ("running_mean", "running_var", "num_batches_tracked"):
    compare(getattr(lm, name).numpy(), getattr(tm, name).numpy(), 1e-5, 1e-6, name)

def test_batchnorm2d_train_eval():
  tm, lm = torch.nn.BatchNorm2d(3, momentum=0.3), nn.BatchNorm2d(3, momentum=0.3)
  lm.load_state_dict(tm.state_dict())
  for seed in range(3):   # three training batches update the running stats
    x = rand(4, 3, 5, 5, seed=seed)
    tm.train(); lm.train()
    compare(lm(Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), 1e-4, 1e-5, f"train output {seed}")
  for name in ("running_mean", "running_var", "num_batches_tracked"):
    compare(getattr(lm, name).numpy(), getattr(tm, name).numpy(), 1e-5, 1e-6, name)
  check_layer(tm, lm, rand(2, 3, 4, 4, seed=9), train=False)

def test_batchnorm_cumulative_momentum_and_no_stats():
  tm, lm = torch.nn.BatchNorm1d(3, momentum=None), nn.BatchNorm1d(3, momentum=None)
  for seed in range(3):
    x = rand(5, 3, seed=seed)
    tm(torch.tensor(x)); lm(Tensor(x))
  compare(lm.running_mean.numpy(), tm.running_mean.numpy(), 1e-5, 1e-6, "running_mean")
  compare(lm.running_var.numpy(), tm.running_var.numpy(), 1e-5, 1e-6, "running_var")
  tm2, lm2 = torch.nn.BatchNorm2d(2, affine=False, track_running_stats=False), nn.BatchNorm2d(2, affine=False, track_running_stats=False)
  assert list(lm2.state_dict()) == list(tm2.state_dict()) == []
  check_layer(tm2, lm2, rand(3, 2, 3, 3), train=False)

def test_batchnorm_bad_input(device):
  device_independent(device)
  with pytest.raises(ValueError, match="channels"): nn.BatchNorm2d(3)(Tensor.zeros(2, 4, 3, 3))
  with pytest.raises(ValueError, match="4-D"): nn.BatchNorm2d(3)(Tensor.zeros(2, 3))

@pytest.mark.parametrize("shape", [6, (3, 6)])
def test_layernorm(shape, device):
  on_interp_only_if(device, shape != 6)
  tm, lm = torch.nn.LayerNorm(shape), nn.LayerNorm(shape)
  tm.weight.data.uniform_(0.5, 1.5); tm.bias.data.uniform_(-1, 1)
  check_layer(tm, lm, rand(2, 3, 6))

@pytest.mark.parametrize("eps", [None, 1e-3])
def test_rmsnorm(eps, device):
  on_interp_only_if(device, eps is None)
  tm, lm = torch.nn.RMSNorm(6, eps=eps), nn.RMSNorm(6, eps=eps)
  tm.weight.data.uniform_(0.5, 1.5)
  check_layer(tm, lm, rand(4, 6))


# ---- stateless layers
STATELESS = [
  lambda m: m.ReLU(), lambda m: m.GELU(), lambda m: m.GELU(approximate="tanh"), lambda m: m.SiLU(), lambda m: m.Tanh(),
  lambda m: m.Sigmoid(), lambda m: m.LeakyReLU(0.2), lambda m: m.Softmax(dim=1), lambda m: m.Identity(),
  lambda m: m.MaxPool2d(2), lambda m: m.MaxPool2d(3, stride=2, padding=1), lambda m: m.AvgPool2d(2),
  lambda m: m.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), lambda m: m.AdaptiveAvgPool2d(1),
  lambda m: m.AdaptiveAvgPool2d((3, 2)), lambda m: m.Flatten(), lambda m: m.Flatten(0, 2)]

@pytest.mark.parametrize("make", STATELESS)
def test_stateless(make, device):
  on_interp_only_if(device, make in STATELESS[1::3])
  check_layer(make(torch.nn), make(nn), rand(2, 3, 6, 5))

def test_dropout():
  d = nn.Dropout(0.25)
  x = Tensor.ones(200, 100)
  assert np.array_equal(d.eval()(x).numpy(), x.numpy())
  out = d.train()(x).numpy()
  np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.75], rtol=1e-6)
  assert abs((out == 0).mean() - 0.25) < 0.02
  with pytest.raises(ValueError): nn.Dropout(1.5)


# ---- attention, transformer, LSTM
def _causal(n):
  return np.triu(np.ones((n, n), dtype=bool), 1)

@pytest.mark.parametrize("case", ["plain", "bool_mask", "float_mask_padding", "no_weights", "seq_first", "cross"])
def test_multihead_attention(case, device):
  on_interp_only_if(device, case == "plain")
  E, H, B, L, S = 8, 2, 2, 5, 5
  batch_first = case != "seq_first"
  tm, lm = torch.nn.MultiheadAttention(E, H, batch_first=batch_first), nn.MultiheadAttention(E, H, batch_first=batch_first)
  tm.in_proj_bias.data.uniform_(-0.5, 0.5); tm.out_proj.bias.data.uniform_(-0.5, 0.5)
  if case == "cross": S = 3
  q = rand(B, L, E, seed=1) if batch_first else rand(L, B, E, seed=1)
  kv = rand(B, S, E, seed=2) if batch_first else rand(S, B, E, seed=2)
  kw = {}
  if case == "bool_mask": kw["attn_mask"] = (torch.tensor(_causal(L)), Tensor(_causal(L)))
  if case == "float_mask_padding":
    m = rand(L, S, seed=3)
    pad = np.zeros((B, S), dtype=bool); pad[1, -2:] = True
    kw["attn_mask"], kw["key_padding_mask"] = (torch.tensor(m), Tensor(m)), (torch.tensor(pad), Tensor(pad))
  if case == "no_weights": kw["need_weights"] = False
  if case == "cross": check_layer(tm, lm, q, kv, kv, kwargs=kw)
  else: check_layer(tm, lm, q, q, q, kwargs=kw)

def test_multihead_attention_per_head_weights(device):
  on_interp_only_if(device, False)
  tm, lm = torch.nn.MultiheadAttention(6, 3, batch_first=True), nn.MultiheadAttention(6, 3, batch_first=True)
  x = rand(2, 4, 6)
  check_layer(tm, lm, x, x, x, kwargs={"average_attn_weights": False})

@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_kdim_vdim(need_weights, device):
  """kdim/vdim != embed_dim: q/k/v_proj_weight instead of in_proj_weight, as torch (state dicts load both ways)."""
  on_interp_only_if(device, not need_weights)
  tm = torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=5, batch_first=True)
  lm = nn.MultiheadAttention(8, 2, kdim=6, vdim=5, batch_first=True)
  tm.in_proj_bias.data.uniform_(-0.5, 0.5)
  assert sorted(lm.state_dict()) == sorted(tm.state_dict()) and lm.in_proj_weight is None
  assert [tuple(p.shape) for p in lm.parameters()] == [tuple(p.shape) for p in tm.parameters()]
  check_layer(tm, lm, rand(2, 4, 8, seed=1), rand(2, 3, 6, seed=2), rand(2, 3, 5, seed=3), kwargs={"need_weights": need_weights})
  with pytest.raises(ValueError): lm(Tensor(rand(2, 4, 8)), Tensor(rand(2, 3, 8)), Tensor(rand(2, 3, 5)))

@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_layer(norm_first, activation, device):
  on_interp_only_if(device, norm_first)
  kw = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first, activation=activation)
  tm, lm = torch.nn.TransformerEncoderLayer(**kw), nn.TransformerEncoderLayer(**kw)
  for p in tm.parameters(): p.data.uniform_(-0.5, 0.5)
  mask = _causal(5)
  check_layer(tm, lm, rand(2, 5, 8), kwargs={"src_mask": (torch.tensor(mask), Tensor(mask))}, train=True)

def test_transformer_encoder_layer_names_match_torch(device):
  device_independent(device)
  tm, lm = torch.nn.TransformerEncoderLayer(8, 2, 16), nn.TransformerEncoderLayer(8, 2, 16)
  assert list(lm.state_dict()) == list(tm.state_dict())
  assert {k: tuple(v.shape) for k, v in lm.state_dict().items()} == {k: tuple(v.shape) for k, v in tm.state_dict().items()}

@pytest.mark.parametrize("kw", [dict(num_layers=2, batch_first=True), dict(num_layers=1, bidirectional=True), dict(num_layers=2, bias=False)])
def test_lstm(kw, device):
  on_interp_only_if(device, False)   # an LSTM unrolls to hundreds of kernels: minutes under the interpreter
  tm, lm = torch.nn.LSTM(3, 4, **kw), nn.LSTM(3, 4, **kw)
  assert list(lm.state_dict()) == list(tm.state_dict())
  check_layer(tm, lm, rand(2, 3, 3) if kw.get("batch_first") else rand(3, 2, 3))

def test_lstm_initial_state(device):
  on_interp_only_if(device, False)
  tm, lm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True), nn.LSTM(3, 4, num_layers=2, batch_first=True)
  x, h0, c0 = rand(2, 3, 3), rand(2, 2, 4, seed=1), rand(2, 2, 4, seed=2)
  lm.load_state_dict(tm.state_dict())
  tout, (th, tc) = tm(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
  lout, (lh, lc) = lm(Tensor(x), (Tensor(h0), Tensor(c0)))
  for a, b in ((lout, tout), (lh, th), (lc, tc)): compare(a.numpy(), b.detach().numpy(), 1e-4, 1e-5, "lstm")


# ---- Module machinery
def make_net(m):
  """The same small CNN in torch.nn (m=torch.nn) or lazygrad.nn (m=nn)."""
  class Net(m.Module):
    def __init__(self):
      super().__init__()
      self.features = m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(), m.MaxPool2d(2))
      self.heads = m.ModuleList([m.Linear(16, 3), m.Linear(3, 2)])
      self.scale = 2.0

    def forward(self, x):
      x = self.features(x).flatten(1)
      return self.heads[1](self.heads[0](x).relu()) * self.scale
  return Net()

def _nets():
  torch.manual_seed(0)
  return make_net(torch.nn), make_net(nn)

def test_module_names_and_model_parity():
  tm, lm = _nets()
  assert list(lm.state_dict()) == list(tm.state_dict())
  assert [n for n, _ in lm.named_parameters()] == [n for n, _ in tm.named_parameters()]
  assert [n for n, _ in lm.named_buffers()] == [n for n, _ in tm.named_buffers()]
  assert [n for n, _ in lm.named_modules()] == [n for n, _ in tm.named_modules()]
  assert len(list(lm.children())) == 2 and len(lm.heads) == 2 and isinstance(lm.features[0], nn.Conv2d)
  check_layer(tm, lm, rand(2, 1, 4, 4), train=True)

def test_train_eval_and_zero_grad():
  _, lm = _nets()
  assert all(m.training for m in lm.modules())
  lm.eval()
  assert not any(m.training for m in lm.modules())
  lm.train()
  (lm(Tensor(rand(2, 1, 4, 4))).sum()).backward()
  assert all(p.grad is not None for p in lm.parameters())
  lm.zero_grad()
  assert all(p.grad is None for p in lm.parameters())

def test_attribute_registration(device):
  device_independent(device)
  m = nn.Module()
  m.w = Tensor.ones(2, requires_grad=True)
  m.plain = Tensor.ones(2)              # not a parameter: no requires_grad
  m.register_buffer("buf", Tensor.zeros(2))
  m.register_buffer("tmp", Tensor.zeros(1), persistent=False)
  m.sub = nn.Linear(2, 2)
  assert [n for n, _ in m.named_parameters()] == ["w", "sub.weight", "sub.bias"]
  assert list(m.state_dict()) == ["w", "buf", "sub.weight", "sub.bias"]
  m.sub = None                          # replacing a submodule by a non-module unregisters it
  assert [n for n, _ in m.named_parameters()] == ["w"]
  del m.w
  assert list(m.parameters()) == []
  with pytest.raises(AttributeError): m.missing

def test_default_init_ranges():
  Tensor.manual_seed(0)
  lin, conv = nn.Linear(100, 50), nn.Conv2d(8, 16, 3)
  for t, bound in ((lin.weight, 0.1), (lin.bias, 0.1), (conv.weight, 1 / math.sqrt(72)), (conv.bias, 1 / math.sqrt(72))):
    a = t.numpy()
    assert a.min() >= -bound and a.max() <= bound and a.std() > bound / 2.5
  mha = nn.MultiheadAttention(16, 4)
  assert np.all(mha.in_proj_bias.numpy() == 0) and np.all(mha.out_proj.bias.numpy() == 0)
  assert abs(mha.in_proj_weight.numpy()).max() <= math.sqrt(6 / 64)
  bn = nn.BatchNorm2d(3)
  assert np.all(bn.weight.numpy() == 1) and np.all(bn.running_var.numpy() == 1) and bn.num_batches_tracked.item() == 0
  assert abs(nn.Embedding(200, 50).weight.numpy().std() - 1) < 0.05


# ---- load_state_dict errors leave the model unchanged
def _snapshot(m): return {k: v.numpy() for k, v in m.state_dict().items()}

def _unchanged(m, snap):
  now = _snapshot(m)
  assert now.keys() == snap.keys()
  for k in snap: np.testing.assert_array_equal(now[k], snap[k], err_msg=k)

@pytest.mark.parametrize("corrupt,match", [
  (lambda sd: sd.update({"heads.0.weight": np.zeros((4, 16), np.float32)}), "shape"),
  (lambda sd: sd.pop("heads.1.bias"), "missing"),
  (lambda sd: sd.update({"extra.weight": np.zeros(3, np.float32)}), "unexpected"),
  (lambda sd: sd.update({"features.0.bias": np.zeros(4, np.int32)}), "dtype"),
  (lambda sd: sd.update({"features.1.running_mean": "nope"}), "expected a Tensor")])
def test_load_state_dict_errors_leave_model_unchanged(corrupt, match, device):
  on_interp_only_if(device, match == "shape")
  tm, lm = _nets()
  snap = _snapshot(lm)
  sd = {k: v.numpy() for k, v in tm.state_dict().items()}
  corrupt(sd)
  with pytest.raises(RuntimeError, match=match): lm.load_state_dict(sd)
  _unchanged(lm, snap)

def test_load_state_dict_non_strict_and_optional_counter():
  tm, lm = _nets()
  sd = dict(tm.state_dict())
  del sd["features.1.num_batches_tracked"]           # older checkpoints: still a strict load
  lm.load_state_dict(sd)
  sd.pop("heads.1.bias"); sd["junk"] = torch.zeros(1)
  res = lm.load_state_dict(sd, strict=False)
  assert res.missing_keys == ["heads.1.bias"] and res.unexpected_keys == ["junk"]
  bad = dict(sd); bad["heads.0.bias"] = torch.zeros(5)
  snap = _snapshot(lm)
  with pytest.raises(RuntimeError, match="shape"): lm.load_state_dict(bad, strict=False)   # shapes are checked even when not strict
  _unchanged(lm, snap)


# ---- checkpoints (safetensors)
def test_checkpoint_round_trip(tmp_path):
  _, a = _nets()
  a(Tensor(rand(2, 1, 4, 4)))                        # a training forward moves the running stats
  path = tmp_path / "net.safetensors"
  nn.state.save(a.state_dict(), path, metadata={"epoch": 3})
  _, b = _nets()
  b.load_state_dict(nn.state.load(path))
  _unchanged(b, _snapshot(a))
  assert nn.state.load(path)["features.1.num_batches_tracked"].dtype == dtypes.int64
  assert nn.state.load_metadata(path) == {"epoch": "3"}
  x = Tensor(rand(3, 1, 4, 4, seed=5))
  a.eval(); b.eval()
  np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())

def test_torch_safetensors_checkpoint_gives_same_outputs(tmp_path):
  from safetensors.torch import save_file
  tm, lm = _nets()
  x = rand(2, 1, 4, 4)
  tm.train(); tm(torch.tensor(rand(4, 1, 4, 4, seed=3)))   # non-trivial running stats
  path = tmp_path / "torch.safetensors"
  save_file(tm.state_dict(), str(path))
  lm.load_state_dict(nn.state.load(path))
  tm.eval(); lm.eval()
  compare(lm(Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), 1e-4, 1e-5, "outputs after loading a torch checkpoint")

def test_state_load_missing_file(tmp_path, device):
  device_independent(device)
  with pytest.raises(FileNotFoundError): nn.state.load(tmp_path / "nope.safetensors")


# ---- utils
@pytest.mark.parametrize("norm_type,max_norm", [(2.0, 0.5), (float("inf"), 0.1), (1.0, 100.0)])
def test_clip_grad_norm(norm_type, max_norm, device):
  on_interp_only_if(device, norm_type == 2.0)
  tm, lm = torch.nn.Linear(4, 3), nn.Linear(4, 3)
  lm.load_state_dict(tm.state_dict())
  x = rand(5, 4)
  tm(torch.tensor(x)).square().sum().backward()
  lm(Tensor(x)).square().sum().backward()
  tn = torch.nn.utils.clip_grad_norm_(tm.parameters(), max_norm, norm_type)
  ln = nn.utils.clip_grad_norm_(lm.parameters(), max_norm, norm_type)
  compare(ln.numpy(), tn.numpy(), 1e-5, 1e-6, "total norm")
  for (n, tp), lp in zip(tm.named_parameters(), lm.parameters()): compare(lp.grad.numpy(), tp.grad.numpy(), 1e-5, 1e-6, n)


def test_freeze_with_requires_grad():
  m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
  m[0].requires_grad_(False)
  m[0].requires_grad_(False)                         # idempotent
  m(Tensor(rand(5, 3))).sum().backward()
  assert m[0].weight.grad is None and m[2].weight.grad is not None
  m.requires_grad_(True)
  assert all(p.requires_grad for p in m.parameters())

def test_module_to_keeps_tensor_identity():
  m = nn.Linear(3, 2)
  w = m.weight
  before = w.numpy()
  m.to(dtype=dtypes.float64)
  assert m.weight is w and w.dtype == dtypes.float64 and w.requires_grad
  np.testing.assert_allclose(w.numpy(), before)
  assert m(Tensor(rand(2, 3)).double()).dtype == dtypes.float64
