"""Generated kernels compiled for Hopper (sm_90) the way a launch with torch tensors
compiles them (16-byte aligned pointers): the PTX has the instructions a GPU would run,
vectorised loads for contiguous elementwise kernels and tensor-core MMAs for matmuls.
Compiled once, from the interp run, in a subprocess without TRITON_INTERPRET."""

import numpy as np
import pytest

from helpers import compile_for_hopper, hopper_job
from lazygrad import Tensor, schedule

TENSOR_CORE = ("wgmma", "mma.sync")


def _jobs(tensors, **extra) -> list[dict]:
  """One job per kernel, with the launch config a cuda device would use."""
  return [hopper_job(it.kernel, **extra) for it in schedule(*tensors)]


def _compile(jobs: list[dict], tmp_path) -> list[dict]:
  return compile_for_hopper(jobs, str(tmp_path))


@pytest.fixture(autouse=True)
def _interp_only(device):
  if device != "interp": pytest.skip("compiled once, from the interp run")


def test_contiguous_elementwise_loads_are_vectorised_for_sm90(tmp_path):
  rng = np.random.default_rng(0)
  a, b, c = (Tensor(rng.standard_normal((4096, 1024), dtype=np.float32)) for _ in range(3))   # realized inputs
  jobs = _jobs([(a + b) * c])
  assert len(jobs) == 1 and "tl.dot" not in jobs[0]["source"]
  ptx_path = str(tmp_path / "ew.ptx")
  aligned, unaligned = _compile([dict(jobs[0], ptx_out=ptx_path), dict(jobs[0], aligned=False)], tmp_path)
  assert "ld.global.v4" in aligned["ptx_has"], aligned
  # without the launch's pointer alignment Triton cannot prove 16-byte alignment: scalar loads
  assert "ld.global.v4" not in unaligned["ptx_has"], unaligned
  assert aligned["ptx_out"] == ptx_path
  with open(ptx_path) as f: ptx = f.read()
  assert ".target sm_90" in ptx and "ld.global.v4" in ptx


def test_handwritten_dot_gets_tensor_cores_and_cp_async(tmp_path):
  """The compile path itself (independent of the renderer): a plain tl.dot loop compiles
  to wgmma, and its loads to cp.async once the pointers are known to be aligned."""
  src = """import triton
import triton.language as tl


def mm(out_ptr, in1_ptr, in2_ptr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
  pid = tl.program_id(0)
  rm = (pid // 4) * BM + tl.arange(0, BM)
  rn = (pid % 4) * BN + tl.arange(0, BN)
  acc = tl.zeros([BM, BN], dtype=tl.float32)
  for k0 in range(0, 256, BK):
    rk = k0 + tl.arange(0, BK)
    a = tl.load(in1_ptr + rm[:, None] * 256 + rk[None, :])
    b = tl.load(in2_ptr + rk[:, None] * 256 + rn[None, :])
    acc += tl.dot(a, b, out_dtype=tl.float32)
  tl.store(out_ptr + rm[:, None] * 256 + rn[None, :], acc.to(tl.float16))
"""
  job = {"source": src, "name": "mm", "signature": {"out_ptr": "*fp16", "in1_ptr": "*fp16", "in2_ptr": "*fp16"},
         "constexprs": {"BM": 64, "BN": 64, "BK": 32}, "num_warps": 4, "num_stages": 3}
  aligned, unaligned = _compile([job, dict(job, aligned=False)], tmp_path)
  assert "wgmma" in aligned["ptx_has"] and "cp.async" in aligned["ptx_has"], aligned
  assert "cp.async" not in unaligned["ptx_has"], unaligned


def test_fp16_matmul_uses_tensor_cores_on_sm90(tmp_path):
  rng = np.random.default_rng(0)
  x, w = (Tensor(rng.standard_normal((256, 256)).astype(np.float16)) for _ in range(2))
  jobs = _jobs([x @ w])
  assert len(jobs) == 1
  if "tl.dot" not in jobs[0]["source"]:
    pytest.xfail("the matmul kernel is not rendered with tl.dot (matmul template not in use): no tensor cores")
  (res,) = _compile(jobs, tmp_path)
  assert any(m in res["ptx_has"] for m in TENSOR_CORE), res
