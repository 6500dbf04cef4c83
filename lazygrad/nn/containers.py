"""Sequential, ModuleList and ModuleDict: submodules named "0", "1", ... (or by key), as torch."""
from __future__ import annotations
from collections import OrderedDict
from typing import Iterable, Iterator, Optional
from lazygrad.nn.module import Module


class Sequential(Module):
  """Modules run in order, each on the previous one's output, as torch.nn.Sequential.
  Built from modules (named "0", "1", ...) or from one (Ordered)dict of name -> module;
  `seq[i]`, `seq[a:b]` (a new Sequential sharing the modules), `len`, iteration and
  `append` as torch. repr lists the children one per line, indented."""
  def __init__(self, *modules):
    super().__init__()
    if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
      for name, m in modules[0].items(): self.register_module(name, _check(m, "Sequential"))
    else:
      for i, m in enumerate(modules): self.register_module(str(i), _check(m, "Sequential"))

  def forward(self, x):
    """x through every module in turn."""
    for m in self._modules.values(): x = m(x)
    return x

  def __len__(self) -> int: return len(self._modules)
  def __iter__(self) -> Iterator[Module]: return iter(self._modules.values())
  def __getitem__(self, idx):
    if isinstance(idx, slice): return Sequential(OrderedDict(list(self._modules.items())[idx]))
    return list(self._modules.values())[_index(idx, len(self), "Sequential")]
  def append(self, module: Module) -> Sequential:
    """Add `module` at the end (named str(len(self))); returns self."""
    self.register_module(str(len(self)), _check(module, "Sequential"))
    return self


class ModuleList(Module):
  """A list of submodules whose parameters the parent sees (named "0", "1", ...), as
  torch.nn.ModuleList; it has no forward. Indexing, slicing (a new ModuleList), item
  assignment, append, extend, len and iteration as torch; no insert or pop."""
  def __init__(self, modules: Optional[Iterable[Module]] = None):
    super().__init__()
    if modules is not None: self.extend(modules)

  def __len__(self) -> int: return len(self._modules)
  def __iter__(self) -> Iterator[Module]: return iter(self._modules.values())
  def __getitem__(self, idx):
    if isinstance(idx, slice): return ModuleList(list(self._modules.values())[idx])
    return self._modules[str(_index(idx, len(self), "ModuleList"))]
  def __setitem__(self, idx: int, module: Module) -> None:
    self.register_module(str(_index(idx, len(self), "ModuleList")), _check(module, "ModuleList"))
  def append(self, module: Module) -> ModuleList:
    """Add `module` at the end; returns self."""
    self.register_module(str(len(self)), _check(module, "ModuleList"))
    return self
  def extend(self, modules: Iterable[Module]) -> ModuleList:
    """Append each of `modules`; returns self."""
    for m in modules: self.append(m)
    return self


class ModuleDict(Module):
  """A dict of name -> submodule in insertion order, as torch.nn.ModuleDict; it has no
  forward. `md[key]`, assignment, `in`, len, iteration over keys, keys/values/items;
  no pop, update or clear."""
  def __init__(self, modules: Optional[dict] = None):
    super().__init__()
    for k, m in (modules or {}).items(): self[k] = m

  def __len__(self) -> int: return len(self._modules)
  def __iter__(self) -> Iterator[str]: return iter(self._modules)
  def __contains__(self, key: str) -> bool: return key in self._modules
  def __getitem__(self, key: str) -> Module: return self._modules[key]
  def __setitem__(self, key: str, module: Module) -> None: self.register_module(key, _check(module, "ModuleDict"))
  def keys(self):
    """The names, in insertion order."""
    return self._modules.keys()
  def values(self):
    """The modules, in insertion order."""
    return self._modules.values()
  def items(self):
    """(name, module) pairs, in insertion order."""
    return self._modules.items()


def _check(m, where: str) -> Module:
  if not isinstance(m, Module): raise TypeError(f"{where}: expected a Module, got {type(m).__name__}")
  return m


def _index(idx: int, n: int, where: str) -> int:
  if not isinstance(idx, int): raise TypeError(f"{where}: indices must be ints or slices, got {type(idx).__name__}")
  if not -n <= idx < n: raise IndexError(f"{where}: index {idx} out of range for {n} modules")
  return idx % n
