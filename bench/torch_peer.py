#!/usr/bin/env python3
"""PyTorch twin of finelab's reference model, for `deno task bench --peer torch`.

The same decoder as lib/models/transformer.ts with the dense SwiGLU FFN of lib/models/ffn/dense.ts:
token embedding (tied head), pre-norm RMSNorm, causal multi-head attention with rotate-half RoPE,
SwiGLU with the fused w13 = [w1 | w3], final RMSNorm, mean cross-entropy. Weights are finelab's
safetensors layout (matrices [in, out], applied as x @ W). The training step is the bench step of
lib/train/bench.ts: forward, backward, clip_grad_norm_ (global norm), torch.optim.AdamW with weight
decay on the parameters marked decay, constant learning rate, loss readback.

Usage (bench/main.ts runs it with the newest torch it finds: bench/.venv from `deno task bench:setup_torch`,
else Debian's /usr/bin/python3 with python3-torch + libopenblas0-openmp):
  python3 bench/torch_peer.py --weights model.safetensors --batches batches.safetensors \
      --steps 10 --warmup 2 --threads 1 --out result.json [--device cuda] [--compile]

With --compile the loss (forward) goes through torch.compile (inductor); the first warm-up step compiles.

With --device cuda the weights, tables and batches live on the GPU; a step's time ends at the loss
readback (`loss.item()` waits for the GPU), as the webgpu backend's step ends at its loss read.
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # bench/main.ts prints how to install it
    print(f"torch_peer: cannot import torch ({e})", file=sys.stderr)
    sys.exit(3)


def read_safetensors(path):
    """Tensors and metadata of a safetensors file (F32 and I32 only; no safetensors package needed)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base, out = 8 + n, {}
    dtypes = {"F32": torch.float32, "I32": torch.int32}
    for name, info in header.items():
        if info["dtype"] not in dtypes:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']} (only F32, I32)")
        b, e = info["data_offsets"]
        buf = bytearray(data[base + b:base + e])
        t = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]) if len(buf) else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out, meta


def f32hex(x):
    return struct.pack(">f", x).hex()


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Model:
    """The decoder over a dict of leaf tensors named as in finelab."""

    def __init__(self, cfg, weights, device="cpu"):
        self.cfg = cfg
        self.P = {k: v.to(device).clone().requires_grad_(True) for k, v in weights.items()}
        d, nh, T = cfg["d_model"], cfg["n_heads"], cfg["seq_len"]
        hd = d // nh
        half = hd // 2
        # RoPE tables as finelab computes them: angle in float64, then cos/sin rounded to float32.
        ang = [[t * math.pow(cfg["rope_base"], -(2 * j) / hd) for j in range(half)] for t in range(T)]
        self.cos = torch.tensor([[math.cos(a) for a in row] for row in ang], dtype=torch.float32, device=device)
        self.sin = torch.tensor([[math.sin(a) for a in row] for row in ang], dtype=torch.float32, device=device)
        self.mask = torch.triu(torch.full((T, T), -1e9, device=device), diagonal=1)

    def rmsnorm(self, x, g):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.cfg["norm_eps"]) * g

    def rope(self, x, T):
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        c, s = self.cos[:T], self.sin[:T]
        return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], -1)

    def attention(self, x, layer, B, T):
        P, d, nh = self.P, self.cfg["d_model"], self.cfg["n_heads"]
        hd, p = d // nh, f"layers.{layer}.attn"
        qkv = x @ torch.cat([P[f"{p}.wq"], P[f"{p}.wk"], P[f"{p}.wv"]], 1)
        q, k, v = (t.reshape(B, T, nh, hd).transpose(1, 2) for t in qkv.split(d, -1))
        q, k = self.rope(q, T) * (1 / math.sqrt(hd)), self.rope(k, T)
        att = torch.softmax(q @ k.transpose(-1, -2) + self.mask[:T, :T], -1)
        o = (att @ v).transpose(1, 2).reshape(B * T, d)
        return o @ P[f"{p}.wo"]

    def ffn(self, x, layer):
        P, p = self.P, f"layers.{layer}.ffn"
        a, b = (x @ P[f"{p}.w13"]).split(P[f"{p}.w2"].shape[0], -1)
        return (F.silu(a) * b) @ P[f"{p}.w2"]

    def loss(self, x, y):
        P, cfg = self.P, self.cfg
        B, T = x.shape
        h = P["tok_emb"][x.reshape(-1)]
        for layer in range(cfg["n_layers"]):
            h = h + self.attention(self.rmsnorm(h, P[f"layers.{layer}.norm1"]), layer, B, T)
            h = h + self.ffn(self.rmsnorm(h, P[f"layers.{layer}.norm2"]), layer)
        h = self.rmsnorm(h, P["norm_f"])
        logits = h @ P["tok_emb"].t() if cfg["tie_embeddings"] else h @ P["head"]
        return F.cross_entropy(logits, y.reshape(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batches", required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the loss (the first warm-up step compiles)")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print(f"torch_peer: --device cuda, but torch {torch.__version__} has no usable CUDA device "
              f"(torch.cuda.is_available() is False; built with CUDA {torch.version.cuda})", file=sys.stderr)
        sys.exit(5)

    torch.set_num_threads(a.threads)
    weights, meta = read_safetensors(a.weights)
    cfg = json.loads(meta["model_config"])
    specs = json.loads(meta["param_specs"])
    if cfg["ffn"]["kind"] != "dense" or len(cfg["ffn"]) != 1:
        print(f"torch_peer: only the dense FFN has a torch twin (got {cfg['ffn']})", file=sys.stderr)
        sys.exit(4)
    batches, _ = read_safetensors(a.batches)
    xs, ys = batches["x"].long().to(a.device), batches["y"].long().to(a.device)
    if xs.shape[0] < a.warmup + a.steps:
        raise SystemExit(f"torch_peer: {xs.shape[0]} batches for {a.warmup + a.steps} steps")

    model = Model(cfg, weights, a.device)
    names = [s["name"] for s in specs]
    decay = [model.P[s["name"]] for s in specs if s["decay"]]
    no_decay = [model.P[s["name"]] for s in specs if not s["decay"]]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    params = [model.P[n] for n in names]
    if a.compile and not hasattr(torch, "compile"):
        print(f"torch_peer: --compile needs torch >= 2.0 (this is {torch.__version__})", file=sys.stderr)
        sys.exit(6)
    loss_fn = torch.compile(model.loss) if a.compile else model.loss

    losses, times, t_load = [], [], (0.0, 0.0)
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t_load = (cpu_seconds(), time.perf_counter())
        t0 = time.perf_counter()
        loss = loss_fn(xs[s], ys[s])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, a.grad_clip)
        opt.step()
        lv = loss.item()
        dt = (time.perf_counter() - t0) * 1000
        losses.append(lv)
        if s >= a.warmup:
            times.append(dt)
    cpu_total = cpu_seconds() - t_load[0]
    load = {"self_cores": round(cpu_total / (time.perf_counter() - t_load[1]), 2), "load_avg_1m": os.getloadavg()[0]}
    srt = sorted(times)
    med = srt[len(srt) // 2]
    B, T = xs.shape[1], xs.shape[2]
    cfg_text = torch.__config__.show()
    blas = cfg_text.split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in cfg_text else "unknown"
    res = {
        "backend": "torch",
        "backend_details": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": a.device,
            "compiled": a.compile,
            "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None,
            "cuda": torch.version.cuda if a.device == "cuda" else None,
            "blas_info": blas,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "python": sys.version.split()[0],
        },
        "tokens_per_step": B * T,
        "ms_per_step": [round(t, 1) for t in times],
        "median_ms": med,
        "min_ms": srt[0],
        "mean_ms": sum(times) / len(times),
        "tokens_per_sec": B * T / (med / 1000),
        "losses": losses,
        "loss_hex": [f32hex(v) for v in losses],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cpu_load": load,
        "cpu_ms_per_step": cpu_total * 1000 / a.steps,
    }
    with open(a.out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
