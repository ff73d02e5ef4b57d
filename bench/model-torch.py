"""PyTorch side of bench/model.ts: the same training step (DPO, full fine-tuning or LoRA) and greedy
decoding with a KV cache, on the same model folder, in float32, on the CPU or (job field
`device`: 'cuda', also used by bench/gpu-check.sh) on a CUDA GPU. Prints one JSON line.

The model math is scripts/make-model-fixtures.py's (written from the Hugging Face definitions);
LoRA wraps its `linear` the way PEFT does (x Aᵀ Bᵀ · alpha/r added to the base output).
Usage: /usr/bin/python3 bench/model-torch.py '<json job>'   (job fields: see bench/model.ts)
"""

import importlib.util
import json
import math
import os
import resource
import struct
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('ref', os.path.join(HERE, '..', 'scripts', 'make-model-fixtures.py'))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def load(folder):
    with open(os.path.join(folder, 'config.json')) as f:
        c = json.load(f)
    with open(os.path.join(folder, 'model.safetensors'), 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    w = {}
    for key, info in header.items():
        if key == '__metadata__':
            continue
        a, b = info['data_offsets']
        w[key] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).view(info['shape'])
    return c, w


# Where the job runs; on CUDA it is also torch's default device (the reference model makes tensors).
DEVICE = torch.device('cpu')


def sync():
    """CUDA runs asynchronously: wait for the queued work before reading the clock."""
    if DEVICE.type == 'cuda':
        torch.cuda.synchronize()


def random_ids(c, shape):
    """Token ids drawn on the CPU (same ids on every device), then moved to the default device."""
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, c['vocab_size'], shape, generator=gen, device='cpu').to(DEVICE)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def train(job, c, w):
    rows, seq, pairs = job['rows'], job['seq'], job['rows'] // 2
    ids = random_ids(c, (rows, seq))
    mask = torch.ones(rows, seq, dtype=torch.long)
    response = torch.zeros(rows, seq, dtype=torch.long)
    response[:, job['prompt']:] = 1
    ref_chosen, ref_rejected = torch.zeros(pairs), torch.zeros(pairs)
    lora = job.get('lora')
    if lora:
        for t in w.values():
            t.requires_grad_(False)
        scale = lora['alpha'] / lora['rank']
        adapters = {}
        for key, t in w.items():
            module = key[:-len('.weight')]
            if t.dim() == 2 and module.split('.')[-1] in lora['targets']:
                a = torch.empty(lora['rank'], t.shape[1]).uniform_(-1 / math.sqrt(t.shape[1]), 1 / math.sqrt(t.shape[1]))
                adapters[module] = (a.requires_grad_(True), torch.zeros(t.shape[0], lora['rank'], requires_grad=True))
        base_linear = ref.linear

        def lora_linear(x, weights, key):
            y = base_linear(x, weights, key)
            if key in adapters:
                a, b = adapters[key]
                y = y + scale * ((x @ a.T) @ b.T)
            return y

        ref.linear = lora_linear
        params = [t for pair in adapters.values() for t in pair]
    else:
        params = [t.requires_grad_(True) for t in w.values()]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    times = []
    for step in range(job['warmup'] + job['steps']):
        sync()
        start = time.perf_counter()
        logits = ref.forward(c, w, ids, mask)
        total, _mean, _count = ref.sequence_logps(logits, ids, response)
        chosen, rejected = total[:pairs], total[pairs:]
        margin = (chosen - ref_chosen) - (rejected - ref_rejected)
        loss = torch.nn.functional.softplus(-job['beta'] * margin).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        if step >= job['warmup']:
            times.append(time.perf_counter() - start)
        del logits, total, loss
    return {'step_ms': 1000 * median(times)}


def decode(job, c, w):
    h, nh, nkv = c['hidden_size'], c['num_attention_heads'], c['num_key_value_heads']
    d = c.get('head_dim') or h // nh
    eps = c['rms_norm_eps']
    inv = ref.inv_frequencies(c).float().to(DEVICE)
    head = w['model.embed_tokens.weight'] if c['tie_word_embeddings'] else w['lm_head.weight']

    def step(ids, pos, cache):
        """ids (B, T) at positions pos.. ; cache: per layer (k, v) (B, KV, S, D) or None."""
        b, t = ids.shape
        freqs = torch.arange(pos, pos + t, dtype=torch.float32)[:, None] * inv[None]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        x = w['model.embed_tokens.weight'][ids]
        new = []
        for i in range(c['num_hidden_layers']):
            p = f'model.layers.{i}'
            n = ref.rms_norm(x, w[f'{p}.input_layernorm.weight'], eps)
            q = ref.linear(n, w, f'{p}.self_attn.q_proj').view(b, t, nh, d).transpose(1, 2)
            k = ref.linear(n, w, f'{p}.self_attn.k_proj').view(b, t, nkv, d).transpose(1, 2)
            v = ref.linear(n, w, f'{p}.self_attn.v_proj').view(b, t, nkv, d).transpose(1, 2)
            q, k = q * cos + ref.rotate_half(q) * sin, k * cos + ref.rotate_half(k) * sin
            if cache is not None:
                k, v = torch.cat((cache[i][0], k), dim=2), torch.cat((cache[i][1], v), dim=2)
            new.append((k, v))
            kk, vv = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
            att = q @ kk.transpose(2, 3) / math.sqrt(d)
            if t > 1:
                att = att + torch.full((t, t), float('-inf')).triu(1)
            o = (torch.softmax(att, dim=-1) @ vv).transpose(1, 2).reshape(b, t, nh * d)
            x = x + ref.linear(o, w, f'{p}.self_attn.o_proj')
            n = ref.rms_norm(x, w[f'{p}.post_attention_layernorm.weight'], eps)
            x = x + ref.linear(torch.nn.functional.silu(ref.linear(n, w, f'{p}.mlp.gate_proj'))
                               * ref.linear(n, w, f'{p}.mlp.up_proj'), w, f'{p}.mlp.down_proj')
        x = ref.rms_norm(x[:, -1], w['model.norm.weight'], eps)
        return x @ head.T, new

    ids = random_ids(c, (job['batch'], job['prompt']))
    times = []
    with torch.no_grad():
        for run in range(job['warmup'] + job['steps']):
            sync()
            start = time.perf_counter()
            logits, cache = step(ids, 0, None)
            for i in range(job['new_tokens'] - 1):
                nxt = logits.argmax(-1, keepdim=True)
                logits, cache = step(nxt, job['prompt'] + i, cache)
            sync()
            if run >= job['warmup']:
                times.append(time.perf_counter() - start)
    return {'tokens_per_s': job['batch'] * job['new_tokens'] / median(times)}


def matmul(job):
    """float32 (B, n) x (n, n) throughput: the GPU's matrix peak as cuBLAS reaches it (TF32 off)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    n = job['n']
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    times = []
    for run in range(job['warmup'] + job['steps']):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        if run >= job['warmup']:
            times.append(time.perf_counter() - start)
    return {'gflops': 2 * n ** 3 / median(times) / 1e9}


if __name__ == '__main__':
    job = json.loads(sys.argv[1])
    torch.set_num_threads(job['threads'])
    DEVICE = torch.device(job.get('device', 'cpu'))
    config, weights = load(job['dir']) if job['mode'] != 'matmul' else (None, None)
    if DEVICE.type == 'cuda':
        torch.set_default_device(DEVICE)  # torch >= 2.0; after load, which reads into host memory
    if job['mode'] == 'matmul':
        result = matmul(job)
    else:
        weights = {k: t.to(DEVICE) for k, t in weights.items()}
        result = train(job, config, weights) if job['mode'].startswith('train') else decode(job, config, weights)
    result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result['torch'] = torch.__version__
    if DEVICE.type == 'cuda':
        result['cuda'] = torch.version.cuda
        result['gpu'] = torch.cuda.get_device_name()
        result['peak_gpu_mb'] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(result))
