"""Data-parallel training (lazygrad.distributed, nn.parallel.DistributedDataParallel), DistributedSampler and DLPack.

The multi-process tests start 2 worker processes (this file run as a script: `python test_distributed.py SCENARIO OUT`)
on gloo over a free localhost port, each bounded by a timeout, and compare what they wrote with a single process
computing the same thing on the full batch. They run on the cpu device only (one spawn costs seconds); the DLPack
and sampler tests run on every test device."""
from __future__ import annotations
import gc
import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import lazygrad  # noqa: E402
from lazygrad import Tensor, autograd, nn, optim  # noqa: E402
from lazygrad import distributed as dist  # noqa: E402
from lazygrad.data import DataLoader, DistributedSampler, TensorDataset  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
STEPS, BATCH, ACCUM, JIT_STEPS = 3, 8, 2, 7   # 7 jitted steps: 3 plain or recorded calls, then 4 replays
# (name, optimizer, micro-steps per step, DDP arguments, gradient clipping): what the 2-process run trains
CONFIGS = [("sgd", "sgd", 1, {}, None), ("adamw", "adamw", 1, {"bucket_cap_mb": 1e-4}, None), ("sgd_nosync", "sgd", ACCUM, {}, None),
           ("adamw_overlap", "adamw", 1, {"bucket_cap_mb": 1e-4, "overlap": True}, None), ("sgd_clip", "sgd", 1, {}, 0.5)]


def _data(step: int, micro: int = 0):
  """The full batch of a step (and micro-step): inputs (BATCH, 6) and targets (BATCH,)."""
  rng = np.random.default_rng(100 + 10 * step + micro)
  return rng.standard_normal((BATCH, 6)).astype(np.float32), rng.integers(0, 3, BATCH)


def _model(seed: int):
  Tensor.manual_seed(seed)
  np.random.seed(seed)
  m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
  Tensor.realize(*m.parameters())
  return m


def _opt(name: str, params):
  if name == "sgd": return optim.SGD(params, lr=0.1, momentum=0.9)
  return optim.AdamW(params, lr=0.05, weight_decay=0.1)


def train(opt_name: str, accum: int, rank: int = 0, world: int = 1, ddp_kw: dict | None = None, clip: float | None = None,
          jit: bool = False) -> list[np.ndarray]:
  """STEPS optimizer steps of accum micro-steps on this rank's slice of each batch; with world > 1 the model is wrapped
  in DistributedDataParallel (rank 1 starts from other weights: the broadcast must fix them). The final parameters."""
  model = _model(seed=0 if rank == 0 else 1)
  net = nn.parallel.DistributedDataParallel(model, **(ddp_kw or {})) if world > 1 else model
  opt = _opt(opt_name, model.parameters())
  lo, hi = rank * BATCH // world, (rank + 1) * BATCH // world
  if jit:   # the whole step captured: the gradient all-reduce is a host call between the replayed kernels
    @lazygrad.jit
    def one_step(x, y):
      loss = net(x).cross_entropy(y)
      opt.zero_grad()
      loss.backward()
      opt.step()
      return loss
    for step in range(JIT_STEPS):
      x, y = _data(step)
      one_step(Tensor(x[lo:hi]), Tensor(y[lo:hi]))
    return [p.numpy() for p in model.parameters()]
  for step in range(STEPS):
    opt.zero_grad()
    for micro in range(accum):
      x, y = _data(step, micro)
      sync = world > 1 and micro < accum - 1
      ctx = net.no_sync() if sync else _nothing()
      with ctx:
        loss = net(Tensor(x[lo:hi])).cross_entropy(Tensor(y[lo:hi]))
        loss.backward()
    if clip is not None: nn.utils.clip_grad_norm_(model.parameters(), clip)   # on the averaged gradients (views of the bucket)
    opt.step()
  return [p.numpy() for p in model.parameters()]


class _nothing:
  def __enter__(self): return self
  def __exit__(self, *a): return False


# ---- worker scenarios (run in the spawned processes)
def _scenario_train(out: pathlib.Path, rank: int, world: int) -> None:
  results = {}
  for name, opt_name, accum, kw, clip in CONFIGS: results[name] = train(opt_name, accum, rank, world, kw, clip)
  results["jit"] = train("sgd", 1, rank, world, {}, jit=True)
  np.savez(out / f"train_{rank}.npz", **{f"{k}_{i}": a for k, v in results.items() for i, a in enumerate(v)})


def _scenario_all(out: pathlib.Path, rank: int, world: int) -> None:
  """One spawn for the training runs (cpu) and the API checks (cpu, then interp: buffers that are torch tensors)."""
  _scenario_train(out, rank, world)
  for device in ("cpu", "interp"):
    os.environ["LAZYGRAD_DEVICE"] = device
    _scenario_api(out / device, rank, world)


def _scenario_api(out: pathlib.Path, rank: int, world: int) -> None:
  """The collectives' values and aliasing rules, the shape check and the checkpoint helpers; asserts here."""
  out.mkdir(exist_ok=True)
  x = Tensor.full((3,), float(rank + 1)).contiguous().realize()
  y = x * 2                                   # lazy, computed from x's old value
  held = x.node.buffer
  dist.all_reduce(x)
  assert x.numpy().tolist() == [3.0] * 3 and y.numpy().tolist() == [2.0 * (rank + 1)] * 3, (x.numpy(), y.numpy())
  z = Tensor.full((4,), float(rank + 1)).contiguous().realize()
  own = id(z.node.buffer)   # an id, not a reference: holding the buffer would make it shared
  dist.all_reduce(z, op="max")
  assert z.numpy().tolist() == [2.0] * 4 and id(z.node.buffer) == own, "an exclusive tensor is reduced in place"
  assert held is not x.node.buffer
  base = Tensor.zeros(5).contiguous().realize()
  v = base[1:3]
  v.assign(Tensor.full((2,), float(rank + 1)))
  dist.all_reduce(v, op="avg")
  assert base.numpy().tolist() == [0, 1.5, 1.5, 0, 0], base.numpy()
  ints = Tensor([rank, 10 * rank])
  dist.all_reduce(ints, op=dist.ReduceOp.SUM)
  assert ints.numpy().tolist() == [1, 10] and ints.dtype == lazygrad.dtypes.int64
  b = Tensor.full((2, 2), float(rank)).contiguous()
  dist.broadcast(b, src=1)
  assert b.numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]
  gathered = [Tensor.zeros(2) for _ in range(world)]
  dist.all_gather(gathered, Tensor([rank, rank + 0.5]))
  assert [g.numpy().tolist() for g in gathered] == [[0, 0.5], [1, 1.5]]
  a = Tensor.full((3,), 1.0).contiguous().realize()
  w = dist.all_reduce(a, async_op=True)
  w.wait()
  assert a.numpy().tolist() == [2.0] * 3
  # mismatched models are caught at construction, on every rank, naming the parameter
  try:
    nn.parallel.DistributedDataParallel(nn.Linear(4, 3 + rank))
    raise AssertionError("no error for different models")
  except lazygrad.ShapeError as e: mismatch = str(e)
  assert "'weight'" in mismatch and "(4, 4)" in mismatch and "(3, 4)" in mismatch, mismatch
  # a checkpoint saved by rank 0 loads on every rank (and in a single process: the test reads it)
  model = nn.parallel.DistributedDataParallel(_model(seed=rank))
  assert model.bucket_count == 1 and "module.0.weight" in model.state_dict()
  dist.save_checkpoint(model, out / "ckpt.safetensors")
  fresh = _model(seed=5)
  dist.load_checkpoint(fresh, out / "ckpt.safetensors")
  for p, q in zip(fresh.parameters(), model.module.parameters()): np.testing.assert_array_equal(p.numpy(), q.numpy())
  # after a sync every .grad is a view of its bucket: reading the gradients runs no kernel
  x, y = _data(0)
  model(Tensor(x[:4])).cross_entropy(Tensor(y[:4])).backward()
  grads = [p.grad for p in model.module.parameters()]
  assert len(model.buckets) == 1 and model.buckets[0].is_realized and lazygrad.schedule(*grads) == []
  assert all(g._base is model.buckets[0] for g in grads)
  sampler = DistributedSampler(TensorDataset(np.arange(7.0)), shuffle=False)
  assert (sampler.num_replicas, sampler.rank, list(sampler)) == (2, rank, [[0, 2, 4, 6], [1, 3, 5, 0]][rank])   # padded with index 0
  if dist.is_main_process(): (out / "api_ok").write_text(mismatch)


def _scenario_raise(out: pathlib.Path, rank: int, world: int) -> None:
  """Rank 1 stays away for 4 s, then raises. Rank 0's collective on a group with a 1.5 s timeout fails after it (a peer
  alive but absent); its next one, DDP's construction, fails when rank 1 exits (a peer gone): DistributedErrors, not hangs."""
  short = dist.new_group(timeout=1.5)
  if rank == 1:
    time.sleep(4)
    raise RuntimeError("rank 1 failed on purpose")
  info = {}
  t0 = time.perf_counter()
  try: dist.all_reduce(Tensor([1.0]), group=short)
  except dist.DistributedError as e: info["timeout"], info["timeout_seconds"] = str(e), time.perf_counter() - t0
  t0 = time.perf_counter()
  try: nn.parallel.DistributedDataParallel(_model(0))
  except dist.DistributedError as e:
    info["error"], info["seconds"] = str(e), time.perf_counter() - t0
    raise
  finally: (out / "raise.json").write_text(json.dumps(info))


def _worker(scenario: str, out: str) -> None:
  rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
  dist.init_process_group("gloo", timeout=20)
  try: globals()[f"_scenario_{scenario}"](pathlib.Path(out), rank, world)
  finally:
    if scenario != "raise": dist.destroy_process_group()


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Launch:
  """Processes started now and waited for later, each killed once `timeout` seconds have passed since the start; their
  output goes to files (a full pipe would block a chatty process)."""
  def __init__(self, cmds: list[list[str]], envs: list[dict], out: pathlib.Path, timeout: float):
    out.mkdir(parents=True, exist_ok=True)
    self.deadline, self.files, self.procs, self._results = time.monotonic() + timeout, [], [], None
    for i, (cmd, env) in enumerate(zip(cmds, envs)):
      so, se = open(out / f"stdout_{i}", "w+"), open(out / f"stderr_{i}", "w+")
      self.files.append((so, se))
      self.procs.append(subprocess.Popen(cmd, env=env, cwd=out, stdout=so, stderr=se, text=True))

  def results(self) -> list[subprocess.CompletedProcess]:
    if self._results is None:
      self._results = []
      for p, (so, se) in zip(self.procs, self.files):
        try: p.wait(timeout=max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired: p.kill(); p.wait()
        so.seek(0); se.seek(0)
        self._results.append(subprocess.CompletedProcess(p.args, p.returncode, so.read(), se.read()))
        so.close(); se.close()
    return self._results


def spawn(scenario: str, out: pathlib.Path, world: int = 2, timeout: float = 90) -> Launch:
  """Start the scenario on `world` processes (gloo, localhost), as torchrun would (RANK, WORLD_SIZE, MASTER_*)."""
  env = {**os.environ, "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
         "LAZYGRAD_DEVICE": "cpu", "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
  return Launch([[sys.executable, __file__, scenario, str(out)]] * world, [{**env, "RANK": str(r), "LOCAL_RANK": str(r)} for r in range(world)],
                out, timeout)


def torchrun_example(out: pathlib.Path) -> Launch:
  """`torchrun --nproc_per_node=2 examples/ddp_train.py --steps 3`, saving the model."""
  torchrun = pathlib.Path(sys.executable).with_name("torchrun")
  env = {**os.environ, "LAZYGRAD_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
  cmd = [str(torchrun), "--nproc_per_node=2", f"--master_port={_free_port()}", str(ROOT / "examples" / "ddp_train.py"), "--steps", "3",
         "--out-dir", str(out), "--save", str(out / "m.safetensors")]
  return Launch([cmd], [env], out, 120)


_RUNS: dict = {}   # name -> (Launch, folder): this process's multi-process runs


def _starts():
  return {"all": lambda out: spawn("all", out), "raise": lambda out: spawn("raise", out, timeout=60), "torchrun": torchrun_example}


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
  """Start a multi-process run once per test process: start(name) -> (Launch, folder). In a plain pytest run the first
  call starts all of them, so their start-up and waits overlap; under xdist (tests spread over workers) only the one
  asked for, so no run is started twice."""
  def start(name):
    names = [name] if os.environ.get("PYTEST_XDIST_WORKER") else list(_starts())
    for n in names:
      if n in _RUNS: continue
      if n == "torchrun" and not (pathlib.Path(sys.executable).with_name("torchrun").exists() and _has("sklearn")): continue
      out = tmp_path_factory.mktemp(n)
      _RUNS[n] = (_starts()[n](out), out)
    return _RUNS.get(name)
  yield start
  for launch, _ in _RUNS.values(): launch.results()   # reap (and kill what overran)
  _RUNS.clear()


def _has(mod: str) -> bool:
  try: __import__(mod)
  except ImportError: return False
  return True


def _run(request, device, name):
  """(results, folder) of a multi-process run; skips off the cpu device (a spawn costs seconds; the workers check the
  interp device's buffers themselves)."""
  if device != "cpu": pytest.skip("multi-process runs are checked once, under the cpu device")
  run = request.getfixturevalue("launched")(name)
  if run is None: pytest.skip(f"{name}: torchrun or scikit-learn missing")
  return run[0].results(), run[1]


def test_ddp_matches_one_process_on_the_full_batch(device, request):
  """2 processes on half batches == 1 process on the full batch: SGD-momentum, AdamW with many small buckets,
  no_sync gradient accumulation, bucket-by-bucket overlap, gradient clipping; and the collectives' checks of the same run."""
  res, tmp_path = _run(request, device, "all")
  for r in res: assert r.returncode == 0, r.stderr[-3000:]
  for name, opt_name, accum, _, clip in CONFIGS:
    ref = train(opt_name, accum, clip=clip)
    for rank in range(2):
      got = np.load(tmp_path / f"train_{rank}.npz")
      for i, a in enumerate(ref): np.testing.assert_allclose(got[f"{name}_{i}"], a, rtol=2e-5, atol=2e-6, err_msg=f"{name} rank {rank} param {i}")
  ref = train("sgd", 1, jit=True)   # lazygrad.jit: 2 jitted processes == 1 jitted process on the full batch
  for rank in range(2):
    got = np.load(tmp_path / f"train_{rank}.npz")
    for i, a in enumerate(ref): np.testing.assert_allclose(got[f"jit_{i}"], a, rtol=2e-5, atol=2e-6, err_msg=f"jit rank {rank} param {i}")
  start = _model(1)   # rank 1's own initial weights differ: the broadcast at construction made them rank 0's
  assert not np.allclose(start[0].weight.numpy(), _model(0)[0].weight.numpy())
  # the same run's API checks (_scenario_api asserts inside the workers, on cpu buffers (numpy) and interp buffers (torch
  # tensors)): all_reduce in place when exclusive, a fresh buffer when a lazy value still reads the old one, through a view;
  # broadcast, all_gather, async; mismatched models fail at construction; a checkpoint from rank 0 loads anywhere
  for on in ("cpu", "interp"):
    assert (tmp_path / on / "api_ok").exists()
    m = _model(9)
    m.load_state_dict(nn.state.load(tmp_path / on / "ckpt.safetensors"))   # the world-size-1 load of the 2-process checkpoint
    np.testing.assert_array_equal(m[0].weight.numpy(), _model(0)[0].weight.numpy())


def test_a_rank_that_raises_fails_the_others(device, request):
  """A rank that raises makes the other fail fast with a DistributedError naming the collective, never a hang; a rank
  that is alive but absent fails the other after the group's timeout."""
  res, out = _run(request, device, "raise")
  assert res[1].returncode != 0 and "rank 1 failed on purpose" in res[1].stderr
  assert res[0].returncode not in (0, -9), res[0].stderr[-2000:]   # failed by itself, not killed at the deadline
  info = json.loads((out / "raise.json").read_text())
  assert "all_reduce failed on rank 0 of 2" in info["timeout"] and 1 < info["timeout_seconds"] < 20, info
  assert "failed on rank 0 of 2" in info["error"] and "Another rank" in info["error"] and info["seconds"] < 30, info
  assert "DistributedError" in res[0].stderr


def test_ddp_example_under_torchrun(device, request):
  """`torchrun --nproc_per_node=2 examples/ddp_train.py --steps 3` runs on the CPU (gloo): rank 0 prints the progress and
  the summary once, every rank its own line, and the replicas end identical."""
  (r,), out = _run(request, device, "torchrun")
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  assert r.stdout.count("ddp_train, 2 processes, 3 steps") == 1 and "replicas identical: True" in r.stdout
  assert "rank 0: train loss" in r.stdout and "rank 1: train loss" in r.stdout
  assert (out / "m.safetensors").exists()


def test_no_group_errors_and_single_process_helpers(device):
  """Without a process group: collectives raise a clear error; print0/is_main_process act as rank 0."""
  with pytest.raises(dist.DistributedError, match="init_process_group"): dist.all_reduce(Tensor([1.0]))
  with pytest.raises(dist.DistributedError, match="init_process_group"): nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
  assert dist.is_main_process() and not dist.is_initialized()
  with pytest.raises(TypeError, match="nn.Module"): nn.parallel.DistributedDataParallel(lambda x: x)
  with pytest.raises(ValueError, match="bucket_cap_mb"): nn.parallel.DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)


def test_group_of_one_and_the_flatten_kernel(device):
  """init_process_group() without torchrun's environment is a group of one (DDP then has nothing to average); a bucket's
  flatten is one kernel: flattening costs at most one kernel more than computing the gradients."""
  dist.init_process_group()
  try:
    assert (dist.get_rank(), dist.get_world_size(), dist.get_backend()) == (0, 1, "gloo")
    model = _model(0)
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4)
    assert [len(b) for b in ddp._bucket_params] == [1, 1, 1, 1]   # a 104-byte cap: no two neighbours fit together
    x, y = _data(0)
    ddp(Tensor(x)).cross_entropy(Tensor(y)).backward()
    grads = [p.grad for p in model.parameters()]
    assert not any(g.is_realized for g in grads)   # world size 1: nothing to average, the gradients stay lazy
    one = nn.parallel.DistributedDataParallel(model)
    one.world_size = 2
    flat = one._flat(one._bucket_params[0])
    n_flat, n_grads = len(lazygrad.schedule(flat)), len(lazygrad.schedule(*grads))
    assert one.bucket_count == 1 and n_flat <= n_grads + 1, (n_flat, n_grads)
    assert lazygrad.schedule(flat)[-1].out is flat.node
  finally: dist.destroy_process_group()


def test_ddp_example_as_one_process(device, monkeypatch, capsys):
  """`python examples/ddp_train.py --steps 2`: without torchrun the example is a group of one and still trains."""
  _cpu_only_inprocess(device)
  pytest.importorskip("sklearn")
  monkeypatch.syspath_prepend(str(ROOT / "examples"))
  spec = importlib.util.spec_from_file_location("example_ddp_train", ROOT / "examples" / "ddp_train.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  acc = module.main(["--steps", "2", "--batch-size", "32"])
  out = capsys.readouterr().out
  assert "data-parallel on 1 process(es) (gloo" in out and "replicas identical: True" in out and 0 <= acc <= 1, out
  assert not dist.is_initialized()


def _cpu_only_inprocess(device):
  if device != "cpu": pytest.skip("the example's device is the cpu here (interp would only be slower)")


def test_backward_end_hook(device):
  """autograd.register_backward_end_hook: called after every backward with the leaves whose .grad it changed (already
  accumulated, still lazy); remove() unregisters; a dropped DistributedDataParallel takes its hook with it."""
  a, b, c = (Tensor([1.0, 2.0], requires_grad=True) for _ in range(3))
  seen = []
  handle = autograd.register_backward_end_hook(lambda leaves: seen.append([(id(t), t.grad is not None and not t.grad.is_realized) for t in leaves]))
  try:
    (a * b).sum().backward()
    assert len(seen) == 1 and sorted(seen[0]) == sorted([(id(a), True), (id(b), True)])
  finally: handle.remove()
  (a * c).sum().backward()
  assert len(seen) == 1
  with pytest.raises(TypeError): autograd.register_backward_end_hook(3)
  n = len(autograd._BACKWARD_END_HOOKS)
  dist.init_process_group()
  try:
    ddp = nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    assert len(autograd._BACKWARD_END_HOOKS) == n + 1
    del ddp
    gc.collect()
    assert len(autograd._BACKWARD_END_HOOKS) == n
  finally: dist.destroy_process_group()


# ---- DistributedSampler
@pytest.mark.parametrize("n", [0, 1, 7, 10])
@pytest.mark.parametrize("replicas", [1, 2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_matches_torch(n, replicas, shuffle, drop_last, device):
  for rank in range(replicas):
    ours = DistributedSampler(range(n), replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last)
    ref = torch.utils.data.DistributedSampler(range(n), replicas, rank, shuffle=shuffle, seed=3, drop_last=drop_last)
    for epoch in (0, 2):
      ours.set_epoch(epoch); ref.set_epoch(epoch)
      assert list(ours) == list(ref) and len(ours) == len(ref)


def test_sampler_drives_the_dataloader(device):
  ds = TensorDataset(np.arange(10, dtype=np.float32))
  sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=1)
  loader = DataLoader(ds, batch_size=3, sampler=sampler)
  got = np.concatenate([b[0].numpy() for b in loader])
  assert len(loader) == 2 and got.tolist() == [float(i) for i in sampler]
  with pytest.raises(ValueError, match="mutually exclusive"): DataLoader(ds, sampler=sampler, shuffle=True)
  with pytest.raises(ValueError, match="rank"): DistributedSampler(ds, num_replicas=2, rank=2)


# ---- DLPack
def test_dlpack_to_torch_shares_memory(device):
  t = (Tensor.arange(6).float() * 2).reshape(2, 3).realize()
  tt = torch.from_dlpack(t)
  assert tt.shape == (2, 3) and tt.tolist() == [[0, 2, 4], [6, 8, 10]]
  tt[0, 1] = 100.0                      # a write through torch is a write of the lazygrad buffer
  assert t.numpy()[0, 1] == 100.0
  tv = torch.from_dlpack(t.T)           # a realized strided view exports its strides, still no copy
  assert tv.stride() == (1, 3) and tv.tolist() == t.numpy().T.tolist()
  tv[2, 0] = -1.0
  assert t.numpy()[0, 2] == -1.0
  assert t.__dlpack_device__() == (1, 0)
  lazy = Tensor([1.0, 2.0]) + 1         # a lazy tensor is realized first
  assert torch.from_dlpack(lazy).tolist() == [2.0, 3.0] and lazy.is_realized
  padded = Tensor([1.0, 2.0]).realize().pad((1, 1))   # a masked view has no strided form: a contiguous copy
  assert torch.from_dlpack(padded).tolist() == [0.0, 1.0, 2.0, 0.0]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "bool", "bfloat16"])
def test_dlpack_from_torch_shares_memory(dtype, device):
  src = torch.arange(4).to(getattr(torch, dtype))
  t = lazygrad.from_dlpack(src, device=device)
  assert t.device == device and t.dtype == lazygrad.dtypes.from_any(src.dtype)
  assert t.numpy().astype(np.float32).tolist() == src.float().tolist()
  if dtype == "bfloat16" and device == "cpu": return   # numpy has no bfloat16 to share: lazygrad copies, as from_torch
  src[1] = 0
  assert t.numpy().astype(np.float32).tolist() == src.float().tolist(), "a write to the source shows in the tensor"
  back = torch.from_dlpack(t)
  assert back.data_ptr() == src.data_ptr()


def test_dlpack_numpy_round_trip(device):
  a = np.arange(5, dtype=np.float32)
  t = lazygrad.from_dlpack(a)
  assert t.device == "cpu"
  a[0] = 42
  b = np.from_dlpack(t)
  assert t.numpy()[0] == 42 and np.shares_memory(a, b)


if __name__ == "__main__":
  _worker(sys.argv[1], sys.argv[2])
