"""The nn modules added for torch parity (conv, activation, spatial, normalization) against torch's: the same weights
(loaded from torch's state_dict), the same outputs and input gradients; parameter names, shapes and reprs as torch's."""
import numpy as np
import pytest
import torch
import lazygrad.nn as ln
from lazygrad import Tensor
from helpers import compare, make_inputs

CASES = [
  ("Conv1d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 9)),
  ("Conv1d", (2, 3, 3), {"padding": 2, "padding_mode": "reflect"}, (2, 2, 6)),
  ("Conv1d", (2, 3, 4), {"padding": "same", "padding_mode": "circular", "bias": False}, (1, 2, 7)),
  ("Conv3d", (2, 3, 2), {"padding": 1, "padding_mode": "replicate"}, (1, 2, 3, 3, 3)),
  ("ConvTranspose1d", (4, 2, 3), {"stride": 2, "output_padding": 1}, (2, 4, 5)),
  ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, (1, 4, 3, 4)),
  ("ConvTranspose3d", (2, 2, 2), {"stride": 2}, (1, 2, 2, 2, 3)),
  ("ELU", (0.5,), {}, (3, 4)), ("CELU", (), {"alpha": 2.0}, (3, 4)), ("SELU", (), {}, (3, 4)), ("ReLU6", (), {}, (3, 4)),
  ("Hardtanh", (-0.5, 0.5), {}, (3, 4)), ("Hardswish", (), {}, (3, 4)), ("Hardsigmoid", (), {}, (3, 4)), ("Mish", (), {}, (3, 4)),
  ("Softplus", (), {"beta": 2.0}, (3, 4)), ("Softsign", (), {}, (3, 4)), ("Tanhshrink", (), {}, (3, 4)), ("LogSigmoid", (), {}, (3, 4)),
  ("Hardshrink", (0.3,), {}, (3, 4)), ("Softshrink", (), {}, (3, 4)), ("Threshold", (0.1, 2.0), {}, (3, 4)),
  ("LogSoftmax", (1,), {}, (3, 4)), ("Softmin", (), {"dim": 0}, (3, 4)), ("GLU", (), {}, (3, 4)), ("Softmax2d", (), {}, (2, 3, 2, 2)),
  ("PReLU", (3,), {}, (2, 3, 4)), ("PReLU", (), {"init": 0.1}, (2, 3)),
  ("MaxPool1d", (3,), {"stride": 2, "ceil_mode": True}, (2, 3, 8)), ("MaxPool3d", (2,), {}, (1, 2, 4, 4, 4)),
  ("AvgPool1d", (3,), {"stride": 2, "padding": 1}, (2, 3, 8)), ("AvgPool3d", (2,), {"ceil_mode": True}, (1, 1, 3, 4, 5)),
  ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 8)), ("AdaptiveAvgPool3d", ((2, 1, 3),), {}, (1, 2, 4, 3, 5)),
  ("AdaptiveMaxPool1d", (3,), {}, (2, 3, 8)), ("AdaptiveMaxPool2d", ((2, 3),), {}, (1, 2, 5, 7)),
  ("AdaptiveMaxPool3d", (2,), {}, (1, 1, 3, 4, 5)), ("LPPool3d", (2, 2), {}, (1, 1, 2, 4, 4)),
  ("LPPool2d", (2, 2), {}, (1, 2, 4, 4)), ("Upsample", (), {"scale_factor": 2, "mode": "bilinear"}, (1, 2, 3, 3)),
  ("Upsample", (), {"size": (4, 5)}, (1, 2, 3, 3)), ("UpsamplingNearest2d", (), {"scale_factor": 2}, (1, 1, 2, 3)),
  ("UpsamplingBilinear2d", (), {"size": 5}, (1, 1, 2, 3)),
  ("ZeroPad2d", ((1, 2, 0, 1),), {}, (1, 2, 3, 3)), ("ConstantPad1d", (2, 3.5), {}, (2, 3)), ("ReflectionPad2d", (2,), {}, (1, 1, 3, 4)),
  ("ReplicationPad1d", ((1, 3),), {}, (2, 2, 3)), ("CircularPad2d", (1,), {}, (1, 2, 3, 3)), ("ReflectionPad3d", (1,), {}, (1, 1, 2, 3, 3)),
  ("Unflatten", (1, (2, 3)), {}, (2, 6, 2)), ("Unfold", (2,), {"padding": 1}, (1, 2, 3, 3)), ("Fold", ((3, 4), 2), {}, (1, 8, 6)),
  ("PixelShuffle", (2,), {}, (1, 8, 2, 2)), ("PixelUnshuffle", (2,), {}, (1, 2, 4, 4)), ("ChannelShuffle", (2,), {}, (1, 4, 2, 2)),
  ("GroupNorm", (2, 4), {}, (2, 4, 3)), ("GroupNorm", (1, 4), {"affine": False}, (2, 4, 2, 2)),
  ("InstanceNorm1d", (3,), {"affine": True}, (2, 3, 5)), ("InstanceNorm2d", (3,), {}, (2, 3, 3, 3)), ("InstanceNorm2d", (3,), {}, (3, 3, 3)),
  ("InstanceNorm3d", (2,), {}, (1, 2, 2, 3, 2)), ("LocalResponseNorm", (3,), {}, (2, 5, 2, 2)), ("BatchNorm3d", (2,), {}, (3, 2, 2, 2, 2)),
  ("Dropout2d", (), {}, (2, 3, 2, 2)), ("AlphaDropout", (0.3,), {}, (3, 4)),
]


def _run(nn, T, name, args, kwargs, x, state=None, train=True):
  m = getattr(nn, name)(*args, **kwargs)
  if state is not None: m.load_state_dict(state)
  if not train or "Dropout" in name: m.eval()
  xt = T(x, requires_grad=True)
  out = m(xt)
  proj = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
  (out * T(proj)).sum().backward()
  return m, out, xt.grad


@pytest.mark.parametrize("name,args,kwargs,shape", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_module_matches_torch(name, args, kwargs, shape, device):
  if device == "interp" and CASES.index((name, args, kwargs, shape)) % 3: pytest.skip("interp runs every third case (slow interpreter)")
  x = make_inputs([shape])[0]
  tm, tout, tgrad = _run(torch.nn, torch.tensor, name, args, kwargs, x)
  state = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
  lm, lout, lgrad = _run(ln, Tensor, name, args, kwargs, x, {k: Tensor(v) for k, v in state.items()})
  assert [(k, tuple(v.shape)) for k, v in lm.named_parameters()] == [(k, tuple(v.shape)) for k, v in tm.named_parameters()]
  compare(lout.numpy(), tout.detach().numpy(), 1e-4, 1e-5, "forward")
  compare(lgrad.numpy(), tgrad.numpy(), 1e-4, 1e-4, "input grad")
  if name != "BatchNorm3d": assert repr(lm) == repr(tm)   # torch's BatchNorm repr has a bias= flag lazygrad's lacks (test_docs.py)


def test_conv_transpose_output_size_and_param_grads():
  x = make_inputs([(1, 2, 4, 4)])[0]
  tm = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
  lm = ln.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
  lm.load_state_dict({k: Tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
  tout, lout = tm(torch.tensor(x), output_size=(8, 8)), lm(Tensor(x), output_size=(8, 8))
  assert lout.shape == tuple(tout.shape) == (1, 3, 8, 8)
  tout.square().sum().backward()
  lout.square().sum().backward()
  compare(lout.numpy(), tout.detach().numpy(), 1e-4, 1e-5, "forward")
  compare(lm.weight.grad.numpy(), tm.weight.grad.numpy(), 1e-4, 1e-4, "weight grad")
  compare(lm.bias.grad.numpy(), tm.bias.grad.numpy(), 1e-4, 1e-4, "bias grad")
  with pytest.raises(ValueError, match="output_size"): lm(Tensor(x), output_size=(11, 11))


def test_instance_norm_tracks_running_stats_like_torch():
  x = make_inputs([(2, 3, 4)])[0]
  tm, lm = torch.nn.InstanceNorm1d(3, track_running_stats=True), ln.InstanceNorm1d(3, track_running_stats=True)
  tm(torch.tensor(x)); lm(Tensor(x))
  compare(lm.running_mean.numpy(), tm.running_mean.numpy(), 1e-5, 1e-6, "running_mean")
  compare(lm.running_var.numpy(), tm.running_var.numpy(), 1e-5, 1e-6, "running_var")
  tm.eval(); lm.eval()
  compare(lm(Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), 1e-4, 1e-5, "eval forward")


def test_bilinear_layer_and_distances():
  a, b = make_inputs([(3, 4), (3, 5)])
  tm, lm = torch.nn.Bilinear(4, 5, 2), ln.Bilinear(4, 5, 2)
  lm.load_state_dict({k: Tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
  compare(lm(Tensor(a), Tensor(b)).numpy(), tm(torch.tensor(a), torch.tensor(b)).detach().numpy(), 1e-4, 1e-5, "bilinear")
  assert repr(lm) == repr(tm)
  c = make_inputs([(3, 4)], seed=2)[0]
  compare(ln.CosineSimilarity()(Tensor(a), Tensor(c)).numpy(), torch.nn.CosineSimilarity()(torch.tensor(a), torch.tensor(c)).numpy(),
          1e-5, 1e-6, "cosine")
  compare(ln.PairwiseDistance(p=1.0)(Tensor(a), Tensor(c)).numpy(), torch.nn.PairwiseDistance(p=1.0)(torch.tensor(a), torch.tensor(c)).numpy(),
          1e-5, 1e-6, "pairwise")


def test_max_pool_module_return_indices():
  x = make_inputs([(1, 2, 6, 6)])[0]
  tv, ti = torch.nn.MaxPool1d(2, return_indices=True)(torch.tensor(x).flatten(2))
  lv, li = ln.MaxPool1d(2, return_indices=True)(Tensor(x).flatten(2))
  np.testing.assert_array_equal(li.numpy(), ti.numpy())
  compare(lv.numpy(), tv.numpy(), 0, 0, "values")


RECURRENT = [
  ("GRU", (3, 4), {}, (5, 2, 3)), ("GRU", (3, 4, 2), {"batch_first": True, "bidirectional": True}, (2, 5, 3)),
  ("GRU", (3, 4), {"bias": False}, (5, 3)), ("RNN", (3, 4), {"nonlinearity": "relu", "num_layers": 2}, (4, 2, 3)),
  ("RNN", (3, 4), {"bidirectional": True}, (4, 2, 3)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", RECURRENT, ids=[f"{c[0]}-{i}" for i, c in enumerate(RECURRENT)])
def test_recurrent_matches_torch(name, args, kwargs, shape, device):
  if device == "interp" and RECURRENT.index((name, args, kwargs, shape)) != 0: pytest.skip("an unrolled RNN is many kernels: interp runs one")
  x = make_inputs([shape])[0]
  tm = getattr(torch.nn, name)(*args, **kwargs)
  lm = getattr(ln, name)(*args, **kwargs)
  lm.load_state_dict(tm.state_dict())
  assert list(lm.state_dict()) == list(tm.state_dict()) and repr(lm) == repr(tm)
  tx, lx = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
  (tout, th), (lout, lh) = tm(tx), lm(lx)
  (tout.square().sum() + th.sum()).backward()
  (lout.square().sum() + lh.sum()).backward()
  compare(lout.numpy(), tout.detach().numpy(), 1e-4, 1e-5, "output")
  compare(lh.numpy(), th.detach().numpy(), 1e-4, 1e-5, "h_n")
  compare(lx.grad.numpy(), tx.grad.numpy(), 1e-4, 1e-4, "input grad")
  for (k, p), (_, q) in zip(lm.named_parameters(), tm.named_parameters()): compare(p.grad.numpy(), q.grad.numpy(), 1e-4, 1e-4, k)


@pytest.mark.parametrize("name,kwargs", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu", "bias": False}), ("GRUCell", {}),
                                         ("LSTMCell", {})])
def test_cells_match_torch(name, kwargs):
  x, h = make_inputs([(2, 3), (2, 4)])
  tm, lm = getattr(torch.nn, name)(3, 4, **kwargs), getattr(ln, name)(3, 4, **kwargs)
  lm.load_state_dict(tm.state_dict())
  assert repr(lm) == repr(tm)
  th = (torch.tensor(h), torch.tensor(h) * 0.5) if name == "LSTMCell" else torch.tensor(h)
  lh = (Tensor(h), Tensor(h) * 0.5) if name == "LSTMCell" else Tensor(h)
  for targs, largs in (((torch.tensor(x),), (Tensor(x),)), ((torch.tensor(x), th), (Tensor(x), lh)), ((torch.tensor(x[0]),), (Tensor(x[0]),))):
    tout, lout = tm(*targs), lm(*largs)
    tout, lout = (tout[0], lout[0]) if name == "LSTMCell" else (tout, lout)
    compare(lout.numpy(), tout.detach().numpy(), 1e-5, 1e-6, name)


def test_max_unpool_module():
  x = make_inputs([(1, 2, 4, 4)])[0]
  tv, ti = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
  lv, li = ln.MaxPool2d(2, return_indices=True)(Tensor(x))
  tm, lm = torch.nn.MaxUnpool2d(2), ln.MaxUnpool2d(2)
  compare(lm(lv, li).numpy(), tm(tv, ti).numpy(), 0, 0, "unpool")
  assert repr(lm) == repr(tm)


def _load_torch(lm, tm):
  lm.load_state_dict(tm.state_dict())
  tm.eval(); lm.eval()   # dropout off on both sides
  assert list(lm.state_dict()) == list(tm.state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_stack_matches_torch(norm_first, device):
  if device == "interp" and norm_first: pytest.skip("interp runs the post-norm stack (slow interpreter)")
  torch.manual_seed(0)
  tgt, mem = make_inputs([(2, 3, 8), (2, 5, 8)])
  causal = np.triu(np.ones((3, 3), dtype=bool), 1)
  pad = np.array([[False, False, False, True, True], [False] * 5])
  kw = {"dim_feedforward": 16, "dropout": 0.1, "batch_first": True, "norm_first": norm_first}
  tm = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(8, 2, **kw), 2, norm=torch.nn.LayerNorm(8))
  lm = ln.TransformerDecoder(ln.TransformerDecoderLayer(8, 2, **kw), 2, norm=ln.LayerNorm(8))
  _load_torch(lm, tm)
  tx, lx = torch.tensor(tgt, requires_grad=True), Tensor(tgt, requires_grad=True)
  tout = tm(tx, torch.tensor(mem), tgt_mask=torch.tensor(causal), memory_key_padding_mask=torch.tensor(pad))
  lout = lm(lx, Tensor(mem), tgt_mask=Tensor(causal), memory_key_padding_mask=Tensor(pad))
  compare(lout.numpy(), tout.detach().numpy(), 1e-4, 1e-5, "forward")
  tout.square().sum().backward(); lout.square().sum().backward()
  compare(lx.grad.numpy(), tx.grad.numpy(), 1e-3, 1e-4, "input grad")
  for (k, p), (_, q) in zip(lm.named_parameters(), tm.named_parameters()): compare(p.grad.numpy(), q.grad.numpy(), 1e-3, 1e-4, k)


def test_transformer_encoder_and_full_model_match_torch(device):
  if device == "interp": pytest.skip("a full encoder-decoder is hundreds of kernels: cpu covers it")
  torch.manual_seed(0)
  src, tgt = make_inputs([(4, 2, 8), (3, 2, 8)])
  enc_t = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0), 2, enable_nested_tensor=False)
  enc_l = ln.TransformerEncoder(ln.TransformerEncoderLayer(8, 2, 16, 0.0), 2)
  _load_torch(enc_l, enc_t)
  compare(enc_l(Tensor(src)).numpy(), enc_t(torch.tensor(src)).detach().numpy(), 1e-4, 1e-5, "encoder")
  tm, lm = torch.nn.Transformer(8, 2, 1, 2, 16, 0.0), ln.Transformer(8, 2, 1, 2, 16, 0.0)
  _load_torch(lm, tm)
  mask = torch.nn.Transformer.generate_square_subsequent_mask(3)
  np.testing.assert_array_equal(ln.Transformer.generate_square_subsequent_mask(3).numpy(), mask.numpy())
  compare(lm(Tensor(src), Tensor(tgt), tgt_mask=Tensor(mask.numpy())).numpy(),
          tm(torch.tensor(src), torch.tensor(tgt), tgt_mask=mask).detach().numpy(), 1e-4, 1e-5, "transformer")
  # the clones start equal and are distinct parameters that all get gradients
  a, b = enc_l.layers[0].linear1.weight, enc_l.layers[1].linear1.weight
  assert a is not b
  enc_l.train()
  enc_l(Tensor(src)).sum().backward()
  assert all(p.grad is not None for p in enc_l.parameters())
