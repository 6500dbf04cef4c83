"""Porting: PyTorch training scripts (this folder, kept as torch code) run on lazygrad with only their imports
rewritten (`import torch` -> `import lazygrad as torch`, `torch.nn` -> `lazygrad.nn`, ...). Both start from torch's
initial weights (copied through state_dict) and must give the same loss curve within tolerance."""
import pathlib
import re
import types
import numpy as np
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
SCRIPTS = ["mlp_adam", "cnn_sgd", "lstm_classifier"]


def port(source: str) -> str:
  """The lazygrad version of a torch script: only import lines change."""
  out = []
  for line in source.splitlines():
    if re.match(r"\s*(import|from)\s+torch\b", line):
      line = re.sub(r"^(\s*)import torch$", r"\1import lazygrad as torch", line)
      line = re.sub(r"\btorch\b(?=[\s.])", "lazygrad", line) if "lazygrad as torch" not in line else line
    out.append(line)
  return "\n".join(out) + "\n"


def load(name: str, source: str) -> types.ModuleType:
  mod = types.ModuleType(name)
  exec(compile(source, str(HERE / f"{name}.py"), "exec"), mod.__dict__)   # noqa: S102 (the script under test)
  return mod


def test_port_rewrites_only_imports():
  src = (HERE / "mlp_adam.py").read_text()
  ported = port(src)
  changed = [(a, b) for a, b in zip(src.splitlines(), ported.splitlines()) if a != b]
  assert changed == [("import torch", "import lazygrad as torch"), ("import torch.nn as nn", "import lazygrad.nn as nn"),
                     ("import torch.nn.functional as F", "import lazygrad.nn.functional as F")]
  assert port("from torch import nn") == "from lazygrad import nn\n"


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_matches_torch_loss_curve(name, device):
  # the Triton interpreter takes ~50 s per script here: interp runs the MLP for 2 steps, cpu runs every script in full
  if device == "interp" and name != "mlp_adam": pytest.skip("cpu covers this script; its kernels run on interp in the nn tests")
  steps = {"steps": 2} if device == "interp" else {}
  src = (HERE / f"{name}.py").read_text()
  theirs, ours = load(name, src), load(name + "_lazygrad", port(src))
  torch.manual_seed(0)
  tmodel, lmodel = theirs.make_model(), ours.make_model()
  lmodel.load_state_dict(tmodel.state_dict())       # torch's initial weights
  tlosses, tacc = theirs.train(tmodel, *theirs.make_data(0), **steps)
  llosses, lacc = ours.train(lmodel, *ours.make_data(0), **steps)
  assert len(llosses) == len(tlosses) and all(isinstance(v, float) for v in llosses)
  np.testing.assert_allclose(llosses, tlosses, rtol=1e-4, atol=1e-5)
  assert tlosses[-1] < tlosses[0]
  if tacc is not None: assert abs(lacc - tacc) <= 1 / 32
