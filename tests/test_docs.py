"""nn modules print as torch's do, and every public class, function and method of nn, optim,
data and static has a docstring. Host-only: checked on the cpu run."""
import importlib
import inspect
import os
import pytest

torch = pytest.importorskip("torch")
import lazygrad.nn as ln  # noqa: E402

tn = torch.nn


@pytest.fixture(autouse=True)
def _cpu_only(device):
  if os.environ.get("LAZYGRAD_DEVICE", "cpu") != "cpu": pytest.skip("host-only checks, run on the cpu pass")


REPR_CASES = [
  ("Linear", (784, 128), {}), ("Linear", (4, 3), {"bias": False}),
  ("Conv2d", (1, 16, 3), {"padding": 1}), ("Conv2d", (3, 8, (3, 5)), {"stride": 2, "bias": False}),
  ("Conv2d", (4, 8, 3), {"padding": "same", "dilation": 2, "groups": 2}),
  ("Embedding", (10, 3), {}), ("Embedding", (10, 3), {"padding_idx": 0}), ("Dropout", (0.1,), {}),
  ("ReLU", (), {}), ("GELU", (), {"approximate": "tanh"}), ("SiLU", (), {}), ("Sigmoid", (), {}), ("Tanh", (), {}),
  ("LeakyReLU", (0.2,), {}), ("Softmax", (), {"dim": -1}), ("Identity", (), {}), ("Flatten", (), {}),
  ("MaxPool2d", (2,), {}), ("MaxPool2d", (3, 2, 1), {}), ("AvgPool2d", (2,), {}), ("AdaptiveAvgPool2d", ((1, 1),), {}),
  ("LayerNorm", (64,), {}), ("LayerNorm", (64,), {"bias": False}), ("RMSNorm", ((4, 8),), {}),
  ("LSTM", (10, 20), {}), ("LSTM", (10, 20, 2), {"batch_first": True, "bidirectional": True, "dropout": 0.1}),
]


@pytest.mark.parametrize("name,args,kwargs", REPR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(REPR_CASES)])
def test_module_repr_matches_torch(name, args, kwargs):
  assert repr(getattr(ln, name)(*args, **kwargs)) == repr(getattr(tn, name)(*args, **kwargs))


def test_batchnorm_repr():
  # torch >= 2.x also prints a `bias=` flag that lazygrad's BatchNorm does not take
  assert repr(ln.BatchNorm2d(16)) == "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


def test_nested_sequential_repr_matches_torch():
  ours = ln.Sequential(ln.Linear(784, 128), ln.ReLU(), ln.Sequential(ln.Linear(128, 10), ln.Softmax(-1)))
  theirs = tn.Sequential(tn.Linear(784, 128), tn.ReLU(), tn.Sequential(tn.Linear(128, 10), tn.Softmax(-1)))
  assert repr(ours) == repr(theirs)
  assert repr(ours).splitlines()[:3] == ["Sequential(", "  (0): Linear(in_features=784, out_features=128, bias=True)", "  (1): ReLU()"]


def test_custom_module_repr_lists_children_and_extra_repr():
  class Net(ln.Module):
    def __init__(self):
      super().__init__()
      self.fc = ln.Linear(2, 3)
    def extra_repr(self): return "custom=1"
  assert repr(Net()) == "Net(\n  custom=1\n  (fc): Linear(in_features=2, out_features=3, bias=True)\n)"


DOC_MODULES = ["lazygrad.nn.module", "lazygrad.nn.containers", "lazygrad.nn.layers", "lazygrad.nn.norm", "lazygrad.nn.attention",
               "lazygrad.nn.rnn", "lazygrad.nn.init", "lazygrad.nn.state", "lazygrad.nn.utils", "lazygrad.optim.optimizer",
               "lazygrad.optim.sgd", "lazygrad.optim.adam", "lazygrad.optim.lr_scheduler", "lazygrad.data.loader",
               "lazygrad.data.datasets", "lazygrad.data.text", "lazygrad.static", "lazygrad.nn.functional", "lazygrad.nn.functional_loss",
               "lazygrad.nn.functional_spatial", "lazygrad.nn.loss", "lazygrad.nn.conv", "lazygrad.nn.activation", "lazygrad.nn.spatial",
               "lazygrad.nn.normalization", "lazygrad.nn.recurrent", "lazygrad.nn.transformer", "lazygrad.functions"]


def _undocumented(modname: str) -> list[str]:
  mod = importlib.import_module(modname)
  out = [] if mod.__doc__ else [modname]
  for name, obj in vars(mod).items():
    if name.startswith("_") or getattr(obj, "__module__", None) != modname: continue
    if inspect.isfunction(obj) and not obj.__doc__: out.append(f"{modname}.{name}")
    if not inspect.isclass(obj): continue
    if not obj.__dict__.get("__doc__"): out.append(f"{modname}.{name}")
    for attr, member in vars(obj).items():
      if attr.startswith("_"): continue
      fn = member.fget if isinstance(member, property) else member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
      # an override of a documented base method (forward, extra_repr, get_lr) inherits its docstring
      if callable(fn) and not (fn.__doc__ or inspect.getdoc(getattr(obj, attr))): out.append(f"{modname}.{name}.{attr}")
  return out


@pytest.mark.parametrize("modname", DOC_MODULES)
def test_public_api_has_docstrings(modname):
  assert _undocumented(modname) == []


def _missing_docstrings() -> list[str]:
  """path:line name of every public function, class and method under lazygrad/ without a docstring (read with ast).
  Exempt: private and dunder names."""
  import ast
  import pathlib
  root = pathlib.Path(__file__).resolve().parents[1] / "lazygrad"
  missing = []
  for p in sorted(root.rglob("*.py")):
    def visit(node, prefix, p=p):
      for n in ast.iter_child_nodes(node):
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or n.name.startswith("_"): continue
        if ast.get_docstring(n) is None:
          missing.append(f"{p.relative_to(root.parent)}:{n.lineno} {prefix}{n.name}")
        if isinstance(n, ast.ClassDef): visit(n, prefix + n.name + ".")
    visit(ast.parse(p.read_text()), "")
  return missing


def test_every_public_definition_has_docstring():
  assert _missing_docstrings() == []


def test_kernel_and_expr_repr_are_one_line():
  import lazygrad
  from lazygrad import Tensor
  a, w, b = Tensor.rand(64, 80), Tensor.rand(96, 80), Tensor.rand(96)
  for t in (a, w, b): t.realize()
  items = lazygrad.schedule((a @ w.T + b).relu())
  k = items[-1].kernel
  text = repr(k)
  assert "\n" not in text and len(text) < 200, text
  assert text.startswith(f"<Kernel {k.name} space {tuple(k.shape)} -> {tuple(k.out_shape)} float32")
  assert k.contraction is not None and text.endswith(f" contraction {k.contraction.sizes(k.shape)}>")
  assert repr(k.body) == f"<Expr {k.body.op.name} float32 {len(k.body.srcs)} srcs>"
