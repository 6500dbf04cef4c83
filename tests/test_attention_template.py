"""The flash-attention template (tensor_attention.py, kernels/triton/attention.py, kernels/numpy/attention.py):
scaled_dot_product_attention's values and gradients vs torch, dropout against the composed path with the same
random numbers, the schedule (one forward kernel, no L x S buffer), the modules that use it, and the sm_90 compile."""
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import lazygrad
from lazygrad import Tensor, nn
from lazygrad.ops import Ops
from helpers import compile_for_hopper, hopper_job

TOL = {"float32": 2e-5, "float16": 2e-2, "bfloat16": 8e-2}


def _rand(shape, seed, lo=-1.0, hi=1.0):
  return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


def _skip_bf16_on_interp(dtype, device):
  if dtype == "bfloat16" and device == "interp":
    pytest.skip("Triton 3.9's interpreter has broken bf16 arithmetic (bf16 stored as uint16); bf16 is checked on cpu and by compiling")


def _attention_kernels(*tensors):
  return [it for it in lazygrad.schedule(*tensors) if it.kernel.body.op is Ops.ATTENTION]


def _check(qs, ks, vs, dtype="float32", mask=None, causal=False, scale=None, views=None, seed=0):
  """sdpa forward and gradients (of a random projection) vs torch in fp32 on the same (rounded) inputs."""
  arrays = [_rand(s, seed + i) for i, s in enumerate((qs, ks, vs))]
  tdt = getattr(torch, dtype)
  tts = [torch.tensor(a).to(tdt).float().requires_grad_() for a in arrays]
  lts = [Tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
  view = views or (lambda t: t)
  tm = None if mask is None else torch.tensor(mask)
  lm = None if mask is None else Tensor(mask)
  ref = F.scaled_dot_product_attention(*[view(t) for t in tts], attn_mask=tm, is_causal=causal, scale=scale)
  out = view(lts[0]).scaled_dot_product_attention(view(lts[1]), view(lts[2]), attn_mask=lm, is_causal=causal, scale=scale)
  assert [it.name.split("_")[1] for it in _attention_kernels(out)] == ["fwd"]
  proj = _rand(ref.shape, 99)
  (ref * torch.tensor(proj)).sum().backward()
  (out * Tensor(proj, dtype=dtype)).sum().backward()
  tol = TOL[dtype]
  np.testing.assert_allclose(out.float().numpy(), ref.detach().numpy(), rtol=tol, atol=tol, err_msg="forward")
  for name, lt, tt in zip("qkv", lts, tts):
    g = tt.grad.numpy()
    np.testing.assert_allclose(lt.grad.float().numpy(), g, rtol=tol, atol=tol * max(1.0, float(np.abs(g).max())), err_msg=f"d{name}")


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L,S", [(37, 37), (70, 45), (20, 90)])
def test_sdpa_causal_and_lengths_not_multiples_of_the_block(causal, L, S):
  _check((2, 2, L, 16), (2, 2, S, 16), (2, 2, S, 16), causal=causal)


@pytest.mark.parametrize("E", [16, 64, 80, 128])
def test_sdpa_head_dims(E):
  _check((1, 2, 40, E), (1, 2, 40, E), (1, 2, 40, E), causal=True)


@pytest.mark.parametrize("causal", [False, True])
def test_small_blocks_run_every_loop_stage(causal, monkeypatch):
  """16 x 16 tiles on interp: many key and query blocks, so the unmasked stages (whole blocks below the diagonal)
  and the masked ones (the diagonal, the block running past the sequence) all run, with a mask and without."""
  monkeypatch.setattr("lazygrad.kernels.triton.attention.INTERP_BLOCK", 16)
  _check((1, 2, 50, 24), (1, 2, 45 if not causal else 50, 24), (1, 2, 45 if not causal else 50, 24), causal=causal, seed=3)
  if not causal: _check((2, 37, 16), (2, 53, 16), (2, 53, 16), mask=_rand((37, 53), 8) > -0.7, seed=4)


def test_sdpa_value_head_dim_differs():
  _check((2, 33, 24), (2, 50, 24), (2, 50, 40))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_sdpa_half_precision(dtype, device):
  _skip_bf16_on_interp(dtype, device)
  _check((1, 2, 70, 64), (1, 2, 70, 64), (1, 2, 70, 64), dtype=dtype, causal=True)
  _check((2, 30, 32), (2, 45, 32), (2, 45, 32), dtype=dtype, mask=_rand((30, 45), 7) > -0.5)


def test_sdpa_bool_mask_broadcast():
  _check((2, 2, 30, 16), (2, 2, 50, 16), (2, 2, 50, 16), mask=_rand((2, 1, 30, 50), 5) > -0.6)


def test_sdpa_additive_mask_and_scale():
  _check((2, 2, 30, 16), (2, 2, 50, 16), (2, 2, 50, 16), mask=_rand((1, 50), 5, -3, 3), scale=0.37)
  _check((3, 20, 16), (3, 25, 16), (3, 25, 16), mask=_rand((3, 20, 25), 6, -2, 2))


def test_sdpa_unbatched_and_non_contiguous_views():
  _check((30, 16), (40, 16), (40, 16))
  # (B, L, H, E) tensors read as (B, H, L, E) through a permute: no copy, the template indexes the strides
  _check((2, 30, 3, 16), (2, 40, 3, 16), (2, 40, 3, 16), causal=True, views=lambda t: t.permute(0, 2, 1, 3))
  _check((2, 30, 3, 16), (2, 40, 3, 16), (2, 40, 3, 16), views=lambda t: t[:, 1:-1:2].transpose(1, 2))


def test_sdpa_fully_masked_row_gives_zeros(monkeypatch):
  """A row the mask hides everywhere: lazygrad's documented zeros (torch gives nan), zero gradients; the other rows as torch."""
  shapes = ((2, 10, 16), (2, 12, 16), (2, 12, 16))
  q, k, v = (Tensor(_rand(s, i), requires_grad=True) for i, s in enumerate(shapes))
  mask = np.ones((10, 12), dtype=bool)
  mask[3] = False
  out = q.scaled_dot_product_attention(k, v, attn_mask=Tensor(mask))
  out.sum().backward()
  o = out.numpy()
  assert np.all(o[:, 3] == 0) and np.all(q.grad.numpy()[:, 3] == 0) and np.isfinite(k.grad.numpy()).all()
  tq, tk, tv = (torch.tensor(_rand(s, i)) for i, s in enumerate(shapes))
  ref = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.tensor(mask)).numpy()
  keep = [i for i in range(10) if i != 3]
  np.testing.assert_allclose(o[:, keep], ref[:, keep], rtol=2e-5, atol=2e-5)
  with monkeypatch.context() as mp:   # the composed path agrees, gradients included
    mp.setenv("FLASH_ATTENTION", "0")
    q2, k2, v2 = (Tensor(_rand(s, i), requires_grad=True) for i, s in enumerate(shapes))
    out2 = q2.scaled_dot_product_attention(k2, v2, attn_mask=Tensor(mask))
    assert not _attention_kernels(out2)
    out2.sum().backward()
  np.testing.assert_allclose(o, out2.numpy(), rtol=2e-5, atol=2e-5)
  for a, b in ((q, q2), (k, k2), (v, v2)): np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=2e-5, atol=2e-5)


def _dropout_run(p, causal, seed, device=None):
  Tensor.manual_seed(seed)
  q, k, v = (Tensor(_rand((2, 2, 40, 16), i), device=device, requires_grad=True) for i in range(3))
  out = q.scaled_dot_product_attention(k, v, dropout_p=p, is_causal=causal)
  (out * Tensor(_rand(out.shape, 9), device=device)).sum().backward()
  return out, q, k, v


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_matches_the_composed_path_with_the_same_mask(causal, monkeypatch):
  """The kernels draw Tensor.rand's numbers for the scores' shape: with the same seed the composed path (softmax,
  dropout, matmul, autograd) drops the same elements, so values and all three gradients agree: the backward kernels
  recompute the forward's mask. The composed path runs on the same device (its softmax-with-dropout row kernels once
  failed on interp: a reduce temporary shared the rand seed's name, fixed in the Triton renderer)."""
  fused = _dropout_run(0.3, causal, seed=5)
  assert [it.name.split("_")[-2] for it in _attention_kernels(fused[0])] == ["dropout"]
  with monkeypatch.context() as mp:
    mp.setenv("FLASH_ATTENTION", "0")
    composed = _dropout_run(0.3, causal, seed=5)
  np.testing.assert_allclose(fused[0].numpy(), composed[0].numpy(), rtol=1e-5, atol=1e-5)
  for a, b in zip(fused[1:], composed[1:]): np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)
  other = _dropout_run(0.3, causal, seed=6)   # another seed drops other elements
  assert np.abs(other[0].numpy() - fused[0].numpy()).max() > 1e-3


def test_dropout_keeps_the_right_fraction():
  """q = k = 0: every probability is 1/S; v = identity: O[i, j] = keep_ij / (S (1 - p))."""
  S, p = 64, 0.25
  Tensor.manual_seed(3)
  q, k = Tensor.zeros(1, 64, 16), Tensor.zeros(1, S, 16)
  out = q.scaled_dot_product_attention(k, Tensor.eye(S).reshape(1, S, S), dropout_p=p).numpy()
  keep = out * S * (1 - p)
  np.testing.assert_allclose(keep, np.round(keep), atol=1e-4)   # each entry 0 or 1/(S (1 - p))
  assert abs(keep.mean() - (1 - p)) < 0.03
  assert 0 < keep.sum(-1).min() and keep.sum(-1).max() < S   # rows differ: the mask varies per element


def test_schedule_one_forward_kernel_and_no_score_buffer():
  B, H, T, D = 2, 2, 256, 64
  q, k, v = (Tensor(_rand((B, H, T, D), i), requires_grad=True) for i in range(3))
  out = q.scaled_dot_product_attention(k, v, is_causal=True)
  fwd = lazygrad.schedule(out)
  assert len(fwd) == 1 and fwd[0].name == "attn_fwd_causal_256x256x64x4"
  out.realize()
  (out * out).sum().backward()
  bwd = lazygrad.schedule(q.grad, k.grad, v.grad)
  names = [it.name for it in bwd]
  assert len([n for n in names if n.startswith("attn_bwd")]) == 2 and len(bwd) <= 4, names   # dO, D, dQ, dK|dV
  for it in fwd + bwd: assert math.prod(it.shape) <= B * H * T * 2 * D < B * H * T * T, it


def test_transformer_layer_and_mha_use_the_template():
  Tensor.manual_seed(0)
  layer = nn.TransformerEncoderLayer(32, 2, dim_feedforward=64, dropout=0.0, batch_first=True)
  x = Tensor(_rand((2, 12, 32), 1))
  kinds = lambda t: [it.name.split("_")[2] for it in _attention_kernels(t)]   # noqa: E731
  assert kinds(layer(x, is_causal=True)) == ["causal"]
  pad = Tensor(np.array([[False] * 10 + [True] * 2, [False] * 12]))
  assert kinds(layer(x, src_key_padding_mask=pad)) == ["addmask"]
  mha = nn.MultiheadAttention(32, 4, batch_first=True)
  assert kinds(mha(x, x, x, need_weights=False, attn_mask=Tensor(_rand((12, 12), 2)))[0]) == ["addmask"]


def test_attention_mask_requiring_grad_takes_the_composed_path():
  q, k, v = (Tensor(_rand((2, 8, 16), i)) for i in range(3))
  m = Tensor(_rand((8, 8), 4), requires_grad=True)
  out = q.scaled_dot_product_attention(k, v, attn_mask=m)
  assert not _attention_kernels(out)
  out.sum().backward()
  tm = torch.tensor(_rand((8, 8), 4), requires_grad=True)
  F.scaled_dot_product_attention(*(torch.tensor(_rand((2, 8, 16), i)) for i in range(3)), attn_mask=tm).sum().backward()
  np.testing.assert_allclose(m.grad.numpy(), tm.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_double_backward_through_the_template_raises():
  q, k, v = (Tensor(_rand((1, 8, 16), i), requires_grad=True) for i in range(3))
  gq, = lazygrad.autograd.grad(q.scaled_dot_product_attention(k, v).sum(), [q], create_graph=True)
  with pytest.raises(RuntimeError, match="attention template's backward is not differentiable"): gq.sum().backward()


def test_attention_hopper_compiles_to_mma(device):
  """Forward, dQ and dK|dV for fp16/bf16 (fp16 with dropout) compile for sm_90 and use the tensor cores; an fp32
  forward compiles too (its dots are ieee fp32, no tensor cores, unless backends.cuda.matmul.allow_tf32)."""
  if device != "cpu": pytest.skip("one compile run (the device does not change the source)")
  jobs = []
  for dtype, kinds in (("float16", ("fwd", "bwd")), ("bfloat16", ("fwd", "bwd")), ("float32", ("fwd",))):
    q, k, v = (Tensor(_rand((2, 4, 256, 64), i), dtype=dtype, requires_grad=True) for i in range(3))
    q.scaled_dot_product_attention(k, v, is_causal=True, dropout_p=0.1 if dtype == "float16" else 0.0).sum().backward()
    jobs += [hopper_job(it.kernel, dtype=dtype) for it in _attention_kernels(q.grad, k.grad, v.grad) if it.name.split("_")[1] in kinds]
  assert len(jobs) == 7
  for job, res in zip(jobs, compile_for_hopper(jobs)):
    if job["dtype"] != "float32": assert "wgmma" in res["ptx_has"] or "mma.sync" in res["ptx_has"], (job["name"], job["dtype"], res["ptx_has"])
