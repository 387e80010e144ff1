"""Which small-model recipe grows induction heads? A PyTorch replica of Explorer's decoder (LLaMA semantics: RMSNorm,
RoPE halves form, SwiGLU, GQA, untied head, Explorer's init) trained on a replica of the built-in corpus with
Explorer's optimiser settings, probed like AttentionProbe (random ids in [256, V-1) repeated, n = 32).
Runs many configurations at once, one process each, and writes one JSON line per probe to $OUT/NAME.jsonl."""
import json, math, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F

V = 4096

class Block(torch.nn.Module):
    def __init__(s, d, h, kv, ffn):
        super().__init__()
        s.h, s.kv, s.hd = h, kv, d // h
        s.q = torch.nn.Linear(d, h * s.hd, bias=False); s.k = torch.nn.Linear(d, kv * s.hd, bias=False)
        s.v = torch.nn.Linear(d, kv * s.hd, bias=False); s.o = torch.nn.Linear(h * s.hd, d, bias=False)
        s.gate = torch.nn.Linear(d, ffn, bias=False); s.up = torch.nn.Linear(d, ffn, bias=False); s.down = torch.nn.Linear(ffn, d, bias=False)
        s.n1 = torch.nn.Parameter(torch.ones(d)); s.n2 = torch.nn.Parameter(torch.ones(d))

    def forward(s, x, cos, sin, probe=False):
        b, t, _ = x.shape
        y = rms(x, s.n1)
        q = s.q(y).view(b, t, s.h, s.hd).transpose(1, 2); k = s.k(y).view(b, t, s.kv, s.hd).transpose(1, 2)
        v = s.v(y).view(b, t, s.kv, s.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        r = s.h // s.kv
        k, v = k.repeat_interleave(r, 1), v.repeat_interleave(r, 1)
        if probe:
            a = (q @ k.transpose(-2, -1) / math.sqrt(s.hd)).masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float('-inf')).softmax(-1)
            c = a @ v
        else:
            a, c = None, F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + s.o(c.transpose(1, 2).reshape(b, t, -1))
        y = rms(x, s.n2)
        return x + s.down(F.silu(s.gate(y)) * s.up(y)), a

def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

def rope(x, cos, sin):
    h = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin

class Model(torch.nn.Module):
    def __init__(s, L, d, h, kv, ffn, std, seed):
        super().__init__()
        torch.manual_seed(seed)
        s.emb = torch.nn.Embedding(V, d); s.blocks = torch.nn.ModuleList(Block(d, h, kv, ffn) for _ in range(L))
        s.norm = torch.nn.Parameter(torch.ones(d)); s.head = torch.nn.Linear(d, V, bias=False); s.hd = d // h
        with torch.no_grad():
            for n, p in s.named_parameters():
                if p.dim() == 1: continue
                p.normal_(0, std / math.sqrt(2 * L) if n.endswith('o.weight') or n.endswith('down.weight') else std)

    def forward(s, ids, probe=False):
        t = ids.shape[1]
        inv = 1.0 / (10000 ** (torch.arange(0, s.hd, 2, dtype=torch.float64, device=ids.device) / s.hd))
        ang = torch.outer(torch.arange(t, dtype=torch.float64, device=ids.device), inv); ang = torch.cat([ang, ang], -1)
        cos, sin = ang.cos().float(), ang.sin().float()
        x, maps = s.emb(ids), []
        for b in s.blocks:
            x, a = b(x, cos, sin, probe); maps.append(a)
        return s.head(rms(x, s.norm)), maps

def corpus(rng, B, T, mix, minr, maxr, copies, alphabet, sentences):
    out = np.empty((B, T + 1), np.int64); hi = min(V - 1, 256 + alphabet) if alphabet else V - 1; tot = sum(mix)
    for b in range(B):
        ids = []
        while len(ids) < T + 1:
            p = rng.integers(tot)
            if p < mix[0]:
                ids += [w for part in sentences for w in part[rng.integers(len(part))]]
            elif p < mix[0] + mix[1]:
                ids += list(rng.integers(256, hi, rng.integers(minr, maxr + 1))) * copies
            else:
                st, s = [], [32]
                for _ in range(rng.integers(6, 20)):
                    if st and rng.integers(2) == 0: s.append(50 + st.pop())
                    else: k = rng.integers(4); st.append(k); s.append(40 + k)
                ids += s + [50 + k for k in reversed(st)]
        out[b] = ids[:T + 1]
    return out

def lr_at(step, peak, warm, steps, floor=0.1):
    if step < warm: return peak * (step + 1) / warm
    p = min(1, (step - warm) / max(1, steps - warm - 1)); f = peak * floor
    return f + (peak - f) * 0.5 * (1 + math.cos(math.pi * p))

def run(c):
    dev = 'cuda'
    torch.backends.cuda.matmul.allow_tf32 = True
    m = Model(c['L'], c['d'], c['h'], c['kv'], c.get('ffn', int(2.6875 * c['d'])), c.get('std', 0.02), 1234).to(dev)
    groups = [{'params': [p for p in m.parameters() if p.dim() > 1 or c.get('wd_all', True)], 'weight_decay': c.get('wd', 0.1)}]
    rest = [p for p in m.parameters() if not (p.dim() > 1 or c.get('wd_all', True))]
    if rest: groups.append({'params': rest, 'weight_decay': 0.0})
    opt = torch.optim.AdamW(groups, lr=c['lr'], betas=(0.9, 0.95), eps=1e-8)
    srng = np.random.default_rng(99)
    sentences = [[list(srng.integers(256, 1200, srng.integers(1, 4))) for _ in range(8)] for _ in range(4)]
    rng = np.random.default_rng(1234)
    prng = np.random.default_rng(7); first = prng.integers(256, V - 1, 32)
    probe = torch.tensor(np.concatenate([first, first])[None], device=dev)
    a = c.get('alphabet', 0)
    first = np.random.default_rng(7).integers(256, 256 + a, 32) if a else first
    aprobe = torch.tensor(np.concatenate([first, first])[None], device=dev)
    f = open(os.path.join(os.environ.get('OUT', '.'), c['name'] + '.jsonl'), 'w')
    t0, losses, steps = time.time(), [], c['steps']
    for step in range(steps):
        for g in opt.param_groups: g['lr'] = lr_at(step, c['lr'], 50, steps)
        ids = torch.from_numpy(corpus(rng, c.get('B', 16), c.get('T', 128), c.get('mix', (1, 4, 1)), c.get('minr', 8), c.get('maxr', 40), c.get('copies', 2), c.get('alphabet', 0), sentences)).to(dev)
        logits, _ = m(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
        losses.append(loss.item())
        done = step + 1
        if done % c.get('every', 50) == 0 or done == steps or time.time() - t0 > c['wall']:
            rec = dict(step=done, loss=float(np.mean(losses[-50:])), sec=round(time.time() - t0, 1))
            for key, pr in (('full', probe), ('alpha', aprobe)):
              with torch.no_grad():
                m.eval(); lg, maps = m(pr, probe=True); m.train()
                pl = F.cross_entropy(lg[0, 32:-1], pr[0, 33:]).item()
              best_i, best_p = (0, 0, 0.0), (0, 0, 0.0)
              for l, a in enumerate(maps):
                a = a[0]
                ind = torch.stack([a[:, i, i - 31] for i in range(32, 64)], 1).mean(1)
                prev = torch.stack([a[:, i, i - 1] for i in range(1, 64)], 1).mean(1)
                hi, hp = int(ind.argmax()), int(prev.argmax())
                if ind[hi] > best_i[2]: best_i = (l + 1, hi, float(ind[hi]))
                if prev[hp] > best_p[2]: best_p = (l + 1, hp, float(prev[hp]))
              rec[key] = dict(pl=round(pl, 2), ind=[best_i[0], best_i[1], round(best_i[2], 3)], prev=[best_p[0], best_p[1], round(best_p[2], 3)])
            f.write(json.dumps(rec) + '\n'); f.flush()
            print(c['name'], rec, flush=True)
            if time.time() - t0 > c['wall']: break

# Sweep 1: full vocabulary, untied head (the first device run).
SWEEP1 = {
    'l2-d64': dict(L=2, d=64, h=4, kv=4, lr=3e-3, steps=3000),
    'l2-d64-rep': dict(L=2, d=64, h=4, kv=4, lr=3e-3, steps=3000, mix=(0, 1, 0)),
    'l30-d64': dict(L=30, d=64, h=4, kv=4, lr=3e-3, steps=5000),
    'l30-d64-lr1e2': dict(L=30, d=64, h=4, kv=4, lr=1e-2, steps=5000),
    'l30-d64-lr1e3': dict(L=30, d=64, h=4, kv=4, lr=1e-3, steps=5000),
    'l30-d64-wd0': dict(L=30, d=64, h=4, kv=4, lr=3e-3, steps=5000, wd=0.0),
    'l30-d64-a512': dict(L=30, d=64, h=4, kv=4, lr=3e-3, steps=5000, alphabet=512),
    'l30-d64-h2': dict(L=30, d=64, h=2, kv=2, lr=3e-3, steps=5000),
    'l30-d128-h4': dict(L=30, d=128, h=4, kv=4, lr=3e-3, steps=5000),
    'l30-d128-h8': dict(L=30, d=128, h=8, kv=8, lr=3e-3, steps=5000),
    'l95-d64-h8kv1': dict(L=95, d=64, h=8, kv=1, lr=3e-3, steps=3000),
    'l95-d64-h4kv1': dict(L=95, d=64, h=4, kv=1, lr=3e-3, steps=3000),
    'l95-d64-h8kv1-lr1e3': dict(L=95, d=64, h=8, kv=1, lr=1e-3, steps=3000),
    'l95-d64-h4kv2-rep': dict(L=95, d=64, h=4, kv=2, lr=3e-3, steps=3000, mix=(1, 8, 1)),
}

# Sweep 2: small alphabets for the repeated segments, probed on that alphabet and on the full vocabulary.
SWEEP2 = {
    'l2-a16': dict(L=2, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=16),
    'l2-a64': dict(L=2, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=64),
    'l2-a256': dict(L=2, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=256),
    'l2-a1024': dict(L=2, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=1024),
    'l30-a16': dict(L=30, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=16),
    'l30-a64': dict(L=30, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=64),
    'l30-a256': dict(L=30, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=256),
    'l30-a64-lr1e3': dict(L=30, d=64, h=4, kv=4, lr=1e-3, steps=3000, alphabet=64),
    'l30-a64-rep': dict(L=30, d=64, h=4, kv=4, lr=3e-3, steps=3000, alphabet=64, mix=(0, 1, 0)),
    'l30-d128-a64': dict(L=30, d=128, h=8, kv=8, lr=3e-3, steps=3000, alphabet=64),
    'l95-a16': dict(L=95, d=64, h=8, kv=1, lr=3e-3, steps=1500, alphabet=16),
    'l95-a64': dict(L=95, d=64, h=8, kv=1, lr=3e-3, steps=1500, alphabet=64),
    'l95-h4-a64': dict(L=95, d=64, h=4, kv=1, lr=3e-3, steps=1500, alphabet=64),
    'l95-a256': dict(L=95, d=64, h=8, kv=1, lr=3e-3, steps=1500, alphabet=256),
}

CONFIGS = SWEEP2 if os.environ.get('SWEEP', '2') == '2' else SWEEP1

if __name__ == '__main__':
    if len(sys.argv) > 1:
        c = dict(CONFIGS[sys.argv[1]]); c['name'] = sys.argv[1]; c['wall'] = float(sys.argv[2]) if len(sys.argv) > 2 else 420
        run(c)
    else:
        print(' '.join(CONFIGS))
