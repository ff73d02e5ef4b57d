"""PyTorch side of bench/model.ts: the same training step (DPO, full fine-tuning or LoRA) and greedy
decoding with a KV cache, on the same model folder, in float32, on the CPU or (job field
`device`: 'cuda', also used by bench/gpu-check.sh) on a CUDA GPU, where job field `precision`:
'float16' trains in mixed precision (autocast, gradient scaler). Prints one JSON line, which names
the implementation that ran, torch's version and the BLAS it calls.

When `transformers` is importable the model is its own class (AutoModelForCausalLM, default
attention: SDPA) and decoding is its generate(); otherwise the model math is
scripts/make-model-fixtures.py's (written from the Hugging Face definitions). LoRA adds
x Aᵀ Bᵀ · alpha/r to each target linear's output, as PEFT does.
Usage: /usr/bin/python3 bench/model-torch.py '<json job>'   (job fields: see bench/model.ts)
"""

import contextlib
import importlib.util
import json
import re
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
try:
    import transformers
except ImportError:
    transformers = None


def blas():
    """BLAS_INFO of the build and the BLAS/LAPACK libraries actually mapped (Debian's torch calls the system one)."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    info = re.search(r'BLAS_INFO=([^,\s]+)', torch.__config__.show())
    with open('/proc/self/maps') as f:
        libs = sorted({os.path.realpath(line.split()[-1]) for line in f
                       if re.search(r'blas|mkl|lapack', line.split()[-1], re.I) and '/' in line})
    return f"BLAS_INFO={info.group(1) if info else '?'}; loaded: {', '.join(libs) or 'none'}"


def hf_model(folder):
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    return model, f"transformers {transformers.__version__} {type(model).__name__}, attention {model.config._attn_implementation}"


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


def add_lora(job, modules):
    """LoRA factors (A, B) for the target linears among modules (name -> weight shape), and alpha/r."""
    lora = job['lora']
    scale = lora['alpha'] / lora['rank']
    adapters = {}
    for key, (out_f, in_f) in modules.items():
        if key.split('.')[-1] in lora['targets']:
            a = torch.empty(lora['rank'], in_f).uniform_(-1 / math.sqrt(in_f), 1 / math.sqrt(in_f))
            adapters[key] = (a.requires_grad_(True), torch.zeros(out_f, lora['rank'], requires_grad=True))
    return adapters, scale


def train(job, c, w, hf=None):
    rows, seq, pairs = job['rows'], job['seq'], job['rows'] // 2
    ids = random_ids(c, (rows, seq))
    mask = torch.ones(rows, seq, dtype=torch.long)
    response = torch.zeros(rows, seq, dtype=torch.long)
    response[:, job['prompt']:] = 1
    ref_chosen, ref_rejected = torch.zeros(pairs), torch.zeros(pairs)
    lora = job.get('lora')
    if hf is not None:
        if lora:
            hf.requires_grad_(False)
            linears = {n: m for n, m in hf.named_modules() if isinstance(m, torch.nn.Linear)}
            adapters, scale = add_lora(job, {n: tuple(m.weight.shape) for n, m in linears.items()})
            for name, (a, b) in adapters.items():
                linears[name].register_forward_hook(
                    lambda _m, args, y, a=a, b=b: y + scale * ((args[0] @ a.T) @ b.T))
            params = [t for pair in adapters.values() for t in pair]
        else:
            params = list(hf.parameters())
        hf.train()
        forward = lambda: hf(input_ids=ids, attention_mask=mask).logits  # noqa: E731
    elif lora:
        for t in w.values():
            t.requires_grad_(False)
        shapes = {k[:-len('.weight')]: tuple(t.shape) for k, t in w.items() if t.dim() == 2}
        adapters, scale = add_lora(job, shapes)
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
    if hf is None:
        forward = lambda: ref.forward(c, w, ids, mask)  # noqa: E731
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    # float16: torch's own mixed precision (autocast, float32 master weights, dynamic loss scale)
    half = job.get('precision') == 'float16'
    scaler = torch.cuda.amp.GradScaler(enabled=half)  # the spelling torch 1.13 (Debian) has too
    autocast = (lambda: torch.autocast('cuda', dtype=torch.float16)) if half else contextlib.nullcontext
    times = []
    for step in range(job['warmup'] + job['steps']):
        sync()
        start = time.perf_counter()
        with autocast():
            logits = forward()
        total, _mean, _count = ref.sequence_logps(logits.float(), ids, response)
        chosen, rejected = total[:pairs], total[pairs:]
        margin = (chosen - ref_chosen) - (rejected - ref_rejected)
        loss = torch.nn.functional.softplus(-job['beta'] * margin).mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sync()
        if step >= job['warmup']:
            times.append(time.perf_counter() - start)
        del logits, total, loss
    return {'step_ms': 1000 * median(times)}


def hf_decode(job, c, hf):
    ids = random_ids(c, (job['batch'], job['prompt']))
    n = job['new_tokens']
    hf.eval()
    times = []
    with torch.no_grad():
        for run in range(job['warmup'] + job['steps']):
            sync()
            start = time.perf_counter()
            out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                              min_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=0)
            sync()
            if run >= job['warmup']:
                times.append(time.perf_counter() - start)
            assert out.shape[1] == job['prompt'] + n
    return {'tokens_per_s': job['batch'] * n / median(times)}


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
    """(n, n) x (n, n) throughput in float32 (TF32 off) or float16: the matrix peak as cuBLAS reaches it."""
    torch.backends.cuda.matmul.allow_tf32 = False
    n = job['n']
    dtype = torch.float16 if job.get('precision') == 'float16' else torch.float32
    a, b = (torch.randn(n, n, device=DEVICE, dtype=dtype) for _ in range(2))
    times = []
    for run in range(job['warmup'] + job['steps']):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        if run >= job['warmup']:
            times.append(time.perf_counter() - start)
    return {'gflops': 2 * n ** 3 / median(times) / 1e9}


def run_model(job):
    """The training step or decoding, on transformers' class when it imports, else the hand-written math."""
    training = job['mode'].startswith('train')
    if transformers is not None:
        with open(os.path.join(job['dir'], 'config.json')) as f:
            config = json.load(f)
        model, implementation = hf_model(job['dir'])
        model.to(DEVICE)
        result = train(job, config, None, model) if training else hf_decode(job, config, model)
    else:
        config, weights = load(job['dir'])
        weights = {k: t.to(DEVICE) for k, t in weights.items()}
        implementation = 'hand-written (scripts/make-model-fixtures.py math; transformers is not importable)'
        result = train(job, config, weights) if training else decode(job, config, weights)
    result['implementation'] = implementation
    return result


if __name__ == '__main__':
    job = json.loads(sys.argv[1])
    torch.set_num_threads(job['threads'])
    DEVICE = torch.device(job.get('device', 'cpu'))
    if DEVICE.type == 'cuda':
        torch.set_default_device(DEVICE)  # torch >= 2.0; models load into host memory, then move
    result = matmul(job) if job['mode'] == 'matmul' else run_model(job)
    result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result['torch'] = torch.__version__
    result['blas'] = blas()
    if DEVICE.type == 'cuda':
        result['cuda'] = torch.version.cuda
        result['gpu'] = torch.cuda.get_device_name()
        result['peak_gpu_mb'] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(result))
