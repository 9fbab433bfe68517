"""The PyTorch side of moegrad's side-by-side benchmark (`bench/step_vs_torch.ts` runs it as a child process).

The same training step as `bench/train_moe.ts`, written the way a PyTorch user would write it:

- a decoder-only LM: token embedding (N(0, 0.02)), no learned positions, `layers` pre-LN blocks
  (x + attn(LN(x)), then x + moe(LN(x))), a final LayerNorm and a bias-free head `d -> vocab`;
- attention: four `nn.Linear(d, d)` with biases, `heads` heads, RoPE (rotate-half, base 10000) on queries and
  keys, causal mask, softmax(q k^T / sqrt(hd)) v (PyTorch 1.13 has no fused attention on the CPU);
- a Mixture-of-Experts FFN in every block: a bias-free `nn.Linear(d, E)` router, E experts
  `Linear(d, 4d) -> GELU -> Linear(4d, d)` with biases (an `nn.ModuleList`, the usual PyTorch layout; moegrad
  stacks the same weights as [E, d, h], which changes no count), top-1 routing with SparseMixer v1 (mid-point),
  dispatched by sorting the tokens by expert and looping over the experts;
- the Switch balance loss `0.01 * E * sum_i f_i * mean_t pi_ti` per layer, added to the mean cross-entropy;
- backward, `clip_grad_norm_(1.0)`, AdamW (lr 1e-3, weight decay 0.01).

Only PyTorch is needed (Debian: `apt-get install python3-torch libopenblas0-pthread`; run it with the system
`/usr/bin/python3`). The request is the command line of `bench/step_protocol.ts`; the answer is ONE JSON line
on stdout: parameter count, the wall time of each timed step, the losses, the peak RSS of this process
(`getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux; Linux keeps it across execve, so the benchmark forks this
script through /bin/sh rather than from its own, larger process) and the BLAS libraries mapped into it (from
/proc/self/maps).

    /usr/bin/python3 bench/torch_step.py --vocab 256 --dim 256 --layers 4 --heads 4 --experts 8 \\
        --batch 4 --seq 128 --threads 1 --warmup 1 --repeats 3
"""

import argparse
import json
import os
import platform
import resource
import sys
import time

FLAGS = ("vocab", "dim", "layers", "heads", "experts", "batch", "seq", "threads", "warmup", "repeats")
SIZE_FLAGS = FLAGS[:7]


def parse_request(argv):
    parser = argparse.ArgumentParser(description="Time moegrad's benchmark training step in PyTorch.")
    for flag in FLAGS:
        parser.add_argument("--" + flag, type=int, required=True)
    return parser.parse_args(argv)


REQUEST = parse_request(sys.argv[1:])

# OpenBLAS and OpenMP read their settings when the libraries load, i.e. at `import torch`: set them first.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(REQUEST.threads)
# Idle OpenMP threads sleep instead of spinning, as moegrad's Workers do (they block in Atomics.wait). With
# libgomp's default spinning, two OpenMP threads plus OpenBLAS's own on a machine with two busy cores made the
# two-thread step 10 to 40 times slower than the one-thread step. An OMP_WAIT_POLICY set in the environment
# (ACTIVE: spin) is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the thread variables)
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

JITTER_EPS = 0.1  # SparseMixer's mask width, moegrad's default
BALANCE_COEF = 0.01


def loaded_blas():
    """The BLAS libraries mapped into this process (what PyTorch's matmuls call), or None."""
    paths = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) < 6:
                continue
            name = os.path.basename(fields[5]).lower()
            if ("blas" in name or "mkl" in name) and fields[5] not in paths:
                paths.append(fields[5])
    return ", ".join(paths) or None


class SparseMixerGate(torch.autograd.Function):
    """Forward: gate = scale * pi_D. Backward: dL/dz = 2 * g * pi_D * (onehot(D) - pi) (the scale is ignored)."""

    @staticmethod
    def forward(ctx, logits, excluded, experts, scale):
        pi = torch.softmax(logits.masked_fill(excluded, float("-inf")), dim=-1)
        pi_d = pi.gather(1, experts)
        ctx.save_for_backward(pi, pi_d, experts)
        return pi_d * scale

    @staticmethod
    def backward(ctx, grad):
        pi, pi_d, experts = ctx.saved_tensors
        onehot = torch.zeros_like(pi).scatter_(1, experts, 1.0)
        return 2 * grad * pi_d * (onehot - pi), None, None, None


def sparsemixer_route(logits):
    """SparseMixer v1 top-1 in training mode: (experts [N, 1], gates [N, 1], masked softmax probs [N, E])."""
    with torch.no_grad():
        z = logits.detach()
        top = z.max(dim=-1, keepdim=True).values
        # The relative jitter mask: expert i is out when (max - z_i) / max(|z_i|, max) > 2 eps.
        excluded = (top - z) / torch.maximum(z.abs(), top) > 2 * JITTER_EPS
        # Gumbel-max sample among the kept experts: argmax(z - log Exp(1)).
        keys = (z - torch.empty_like(z).exponential_().log()).masked_fill(excluded, float("-inf"))
        experts = keys.argmax(dim=-1, keepdim=True)
        # Mid-point: the gate is halved when the sample is not the argmax and a coin says so.
        coin = torch.rand_like(z[:, :1]) > 0.5
        scale = 0.5 + 0.5 * ((experts == z.argmax(dim=-1, keepdim=True)) | coin).to(z.dtype)
    probs = torch.softmax(logits.masked_fill(excluded, float("-inf")), dim=-1)
    return experts, SparseMixerGate.apply(logits, excluded, experts, scale), probs


class MoE(nn.Module):
    """Top-1 SparseMixer MoE with E two-layer GELU experts; `forward` returns (y, balance loss)."""

    def __init__(self, dim, num_experts):
        super().__init__()
        self.num_experts = num_experts
        self.router = nn.Linear(dim, num_experts, bias=False)
        # One module per expert, not a stacked [E, d, h] parameter: indexing a stacked weight inside the loop
        # would make autograd zero-fill and add a full [E, d, h] gradient per expert (SelectBackward), which
        # took two thirds of the step at d = 512.
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)) for _ in range(num_experts)
        )

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        experts, gates, probs = sparsemixer_route(self.router(x))
        flat = experts.view(-1)
        order = torch.sort(flat, stable=True).indices
        counts = torch.bincount(flat, minlength=self.num_experts)
        outputs = []
        for expert, rows in zip(self.experts, x.index_select(0, order).split(counts.tolist())):
            outputs.append(expert(rows))
        y_sorted = torch.cat(outputs) * gates.index_select(0, order)
        y = y_sorted.index_select(0, torch.argsort(order))
        f = counts.to(x.dtype) / x.shape[0]
        balance = BALANCE_COEF * self.num_experts * (f * probs.mean(dim=0)).sum()
        return y.view(shape), balance


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x, cos, sin, mask):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.wq(x)), split(self.wk(x)), split(self.wv(x))
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        scores = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        out = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v
        return self.wo(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim, heads, num_experts):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.moe = nn.LayerNorm(dim), MoE(dim, num_experts)

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.norm1(x), cos, sin, mask)
        y, balance = self.moe(self.norm2(x))
        return x + y, balance


class DecoderLM(nn.Module):
    def __init__(self, vocab, dim, layers, heads, num_experts, seq):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, dim)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, num_experts) for _ in range(layers))
        self.norm_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        # RoPE angles and the causal mask depend only on the sizes: buffers, computed once.
        hd = dim // heads
        inv_freq = 10000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        angles = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None, :]
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        self.register_buffer("mask", torch.ones(seq, seq, dtype=torch.bool).tril(), persistent=False)

    def forward(self, ids):
        t = ids.shape[1]
        cos, sin, mask = self.cos[:t], self.sin[:t], self.mask[:t, :t]
        h, balance = self.tok_emb(ids), 0.0
        for block in self.blocks:
            h, b = block(h, cos, sin, mask)
            balance = balance + b
        return self.head(self.norm_f(h)), balance


def main():
    r = REQUEST
    torch.set_num_threads(r.threads)
    torch.manual_seed(1234)
    model = DecoderLM(r.vocab, r.dim, r.layers, r.heads, r.experts, r.seq)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    ids = torch.randint(0, r.vocab, (r.batch, r.seq + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]

    def step():
        logits, balance = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, r.vocab), targets.reshape(-1)) + balance
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    losses = [step() for _ in range(r.warmup)]
    step_ms = []
    for _ in range(r.repeats):
        t0 = time.perf_counter()
        losses.append(step())
        step_ms.append((time.perf_counter() - t0) * 1000)
    report = {
        "side": "torch",
        "sizes": {k: getattr(r, k) for k in SIZE_FLAGS},
        "threads": r.threads,
        "parameters": sum(p.numel() for p in model.parameters()),
        "stepMs": step_ms,
        "losses": losses,
        "peakRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "runtime": f"PyTorch {torch.__version__}, Python {platform.python_version()}, "
        f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}",
        "blas": loaded_blas(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
