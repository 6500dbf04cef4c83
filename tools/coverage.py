"""How much of torch's API lazygrad has: compares the public names of `torch.Tensor`, `torch`,
`torch.nn.functional` and `torch.nn` with lazygrad's counterparts and writes docs/torch_coverage.md.

  python tools/coverage.py            # write docs/torch_coverage.md and print the counts
  python tools/coverage.py --print    # only print the counts

A name counts as covered when lazygrad has an attribute of that name; the semantics are checked by the
torch-comparison tests, not here. Each name torch has and lazygrad lacks is either deliberately not
covered (a rule below matched it, with the reason) or missing. Needs torch (a dev tool)."""
from __future__ import annotations
import inspect
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import lazygrad  # noqa: E402

# (regex on the name, reason); the first match wins. In-place variants are handled separately (see classify).
RULES: list[tuple[str, str]] = [
  (r"sparse|_coo|csr|csc|bsr|bsc|to_dense|^indices$|^values$|crow_|col_indices|row_indices|nnz|coalesce|^smm$|^hspmm$|^sspaddmm$",
   "sparse tensors (lazygrad tensors are dense)"),
  (r"complex|^real$|^imag$|conj|^angle$|^polar$|view_as_real|fft|stft|^resolve_neg$|^is_neg$|^adjoint$|^sgn$",
   "complex dtypes (lazygrad has real dtypes only)"),
  (r"quantiz|^q_|qscheme|int_repr|fake_quant|fbgemm|^quantized|_int_mm|per_channel|per_tensor|^scaled_mm$|^scaled_grouped_mm$",
   "quantization"),
  (r"names$|^rename|^align_to$|^align_as$|^refine_names$", "named tensors"),
  (r"cudnn|mkldnn|miopen|^mps$|xpu|ipu|hpu|mtia|vulkan|xla|nnpack|^nested|_nested|to_padded_tensor|^is_inference$|^cuda_|^conv_tbc$",
   "backend-specific entry points of torch"),
  (r"storage|data_ptr|pin_memory|is_pinned|^share_memory_$|^is_shared$|^set_$|^resize|^stride$|as_strided|record_stream|is_set_to|"
   r"^is_contiguous$|^dim_order$|^untyped|^nbytes$|^itemsize$|^get_device$|^device_of$|^ndimension$|memory_format|^module_load$|^dlpack$|"
   r"^to_dlpack$|^frombuffer$|^from_file$|^asarray$",
   "torch's memory model (strides, storages, raw pointers): lazygrad's views are lazy and its buffers private"),
  (r"^compile$|^jit|^export|^vmap$|^func$|^library|^register|^fx|^onnx|^cond$|^while_loop$|^is_tensor_like$|^is_storage$|"
   r"^use_deterministic|deterministic|^set_default|^get_default|^set_printoptions$|^set_flush_denormal$|^set_num|^get_num|"
   r"^get_file_path$|^typename$|^compiled_with_cxx11_abi$|^is_anomaly|^set_anomaly|^autocast|^is_autocast|^clear_autocast|"
   r"_autocast|^set_autocast|^get_autocast|^is_warn_always|^set_warn_always|^sym_|^Sym|^classproperty$|"
   r"^is_vulkan|^load$|^save$|^chunk_|^lobpcg$|^pca_lowrank$|^svd_lowrank$|"
   r"^fork_rng$|^random$|^prepare_multiprocessing|^import_ir|"
   r"^wait$|^stack_trace|^get_deterministic|^check$|^_assert|^testing|^hub|^utils|^backends|^manual_seed_all$|^set_float32|"
   r"^get_float32|^is_grad_enabled$|^inference_mode$|^set_grad_enabled$|^enable_grad$|^align_tensors$|^get_device_module$|"
   r"^accelerator|^device$|^dispatch|^functional_|^is_deterministic|^rename_privateuse1_backend$|^layout$|^fused_|^batch_norm_|"
   r"^native_|^tensor_split_|^to_mkldnn$|^map_$|^map2_$|^apply_$|^is_leaf$|"
   r"^output_nr$|^module_load$|^tolist_$|^xlogy_$|^_version$|^smm$",
   "torch infrastructure (compiler, serialisation, dispatch, global settings) or autograd internals"),
  (r"^Lazy|^RNNBase$|^RNNCellBase$|^Container$|^Module$|^ParameterList$|^ParameterDict$|^Buffer$|^UninitializedParameter$|"
   r"^UninitializedBuffer$|^SyncBatchNorm$|^CrossMapLRN2d$|^DataParallel$", "nn plumbing (lazy-shape and distributed modules, base classes)"),
  (r"^cholesky|^qr$|^svd|^eig$|^symeig$|^lu$|^lu_|^lstsq$|^solve$|^triangular_solve$|^geqrf$|^orgqr$|^ormqr$|^det$|^logdet$|"
   r"^slogdet$|^inverse$|^pinverse$|^matrix_exp$|^matrix_rank$|^nuclear_norm$|^lobpcg$",
   "dense linear-algebra decompositions and solvers (LAPACK-class algorithms; no composition from lazygrad's primitives)"),
  (r"_copy$", "torch's *_copy forms of view ops (lazygrad views never alias writes, so the view op already acts as a copy)"),
  (r"^lstm$|^lstm_cell$|^gru$|^gru_cell$|^rnn_relu|^rnn_tanh|^convolution$|^grid_sampler|^affine_grid_generator$|^constant_pad_nd$|"
   r"^norm_except_dim$|^embedding_renorm_$|^feature_dropout$|^segment_reduce$|^saddmm$|^dsmm$|^hsmm$|^spmm$",
   "ATen kernels behind nn modules and functions (torch.lstm, torch.convolution, ...): use the nn/F forms"),
  (r"^parse_|^merge_type_from_type_comment$|^unify_type_list$|^fork$|^thread_safe_generator$|^profiler_|^init_num_threads$|"
   r"^is_inference_mode_enabled$|^hash_tensor$|^choose_qparams_optimized$|^is_distributed$",
   "torch infrastructure (TorchScript parsing, threads, profiler)"),
  (r"^embedding_bag$|^ctc_loss$|^grid_sample$|^affine_grid$|^fractional_max_pool|^multi_head_attention_forward$|^grouped_mm$|"
   r"^EmbeddingBag$|^CTCLoss$|^FractionalMaxPool|^boolean_dispatch$|^handle_torch_function$|^has_torch_function|"
   r"^assert_int_or_pair$|^Optional$|^Callable$|^Union$|^TypeVar$|^Any$|^List$",
   "specialised kernels or torch helpers out of scope (embedding_bag, ctc, grid_sample, fractional pooling) or typing names"),
]


def public_names(torch_obj, kind: str) -> list[str]:
  """The public names of a torch namespace that count: methods and attributes of torch.Tensor, functions of torch and
  torch.nn.functional, Module classes (and Parameter) of torch.nn."""
  out = []
  for n in dir(torch_obj):
    if n.startswith("_"): continue
    try: v = getattr(torch_obj, n)
    except Exception: continue   # noqa: BLE001 (a torch attribute may raise on access)
    if kind == "Tensor": out.append(n)
    elif kind == "nn":
      if n == "Parameter" or (inspect.isclass(v) and issubclass(v, torch.nn.Module)): out.append(n)
    elif callable(v) and not inspect.isclass(v) and not inspect.ismodule(v): out.append(n)
  return sorted(set(out))


def lazygrad_namespace(kind: str):
  """lazygrad's counterpart of the torch namespace `kind` (None when it does not exist)."""
  if kind == "Tensor": return lazygrad.Tensor
  if kind == "torch": return lazygrad
  if kind == "nn": return lazygrad.nn
  try:
    import lazygrad.nn.functional as F   # noqa: PLC0415 (absent before issue 12)
    return F
  except ImportError: return None


def classify(names: list[str], ours) -> tuple[list[str], dict[str, list[str]], list[str]]:
  """(covered, {reason: names deliberately not covered}, missing) for torch's `names` against lazygrad's namespace `ours`."""
  has = (lambda n: ours is not None and hasattr(ours, n))
  covered, skipped, missing = [], {}, []
  for n in names:
    if has(n): covered.append(n); continue
    reason = next((r for pat, r in RULES if re.search(pat, n)), None)
    if reason is None and n.endswith("_") and not n.endswith("__") and (has(n[:-1]) or n[:-1] in names):
      reason = "in-place variant (lazygrad values are immutable: use the out-of-place op, or assign() for an in-place update)"
    if reason: skipped.setdefault(reason, []).append(n)
    else: missing.append(n)
  return covered, skipped, missing


NAMESPACES = [("Tensor", "torch.Tensor", "lazygrad.Tensor", lambda: torch.Tensor),
              ("torch", "torch", "lazygrad", lambda: torch),
              ("functional", "torch.nn.functional", "lazygrad.nn.functional", lambda: torch.nn.functional),
              ("nn", "torch.nn", "lazygrad.nn", lambda: torch.nn)]


def report() -> tuple[str, list[tuple[str, int, int, int, int]]]:
  """The markdown of docs/torch_coverage.md and the rows (namespace, total, covered, deliberately not covered, missing)."""
  rows, sections = [], []
  for kind, tname, lname, get in NAMESPACES:
    names = public_names(get(), kind)
    covered, skipped, missing = classify(names, lazygrad_namespace(kind))
    nskip = sum(len(v) for v in skipped.values())
    rows.append((tname, len(names), len(covered), nskip, len(missing)))
    sec = [f"## {tname} -> {lname}", "", f"{len(covered)} of {len(names)} covered, {nskip} deliberately not, {len(missing)} missing.", "",
           f"**Covered ({len(covered)}):** " + ", ".join(f"`{n}`" for n in covered), "",
           f"**Missing ({len(missing)}):** " + (", ".join(f"`{n}`" for n in missing) or "none"), "", "**Deliberately not covered:**", ""]
    for reason, ns in sorted(skipped.items()): sec.append(f"- {reason} ({len(ns)}): " + ", ".join(f"`{n}`" for n in ns))
    sections.append("\n".join(sec))
  head = ["# torch API coverage", "",
          f"Generated by `python tools/coverage.py` against torch {torch.__version__}. A torch name is *covered* when lazygrad "
          "has an attribute of that name (the torch-comparison tests check what it computes; API.md lists where semantics "
          "differ), *deliberately not covered* when a rule in tools/coverage.py says why lazygrad leaves it out, and *missing* "
          "otherwise. torch.Tensor counts every public attribute, torch and torch.nn.functional their functions, torch.nn its "
          "Module classes.", "",
          "| namespace | torch names | covered | deliberately not covered | missing |", "|---|---|---|---|---|"]
  head += [f"| `{t}` | {n} | {c} | {s} | {m} |" for t, n, c, s, m in rows]
  return "\n".join(head + [""] + sections) + "\n", rows


def main(argv: list[str]) -> None:
  """Write docs/torch_coverage.md (unless --print) and print the count table."""
  text, rows = report()
  if "--print" not in argv: (ROOT / "docs" / "torch_coverage.md").write_text(text)
  for t, n, c, s, m in rows: print(f"{t:22s} {n:4d} names: {c:4d} covered, {s:4d} deliberately not, {m:4d} missing")


if __name__ == "__main__":
  main(sys.argv[1:])
