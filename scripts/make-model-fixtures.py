"""Reference fixtures for the model layer's parity tests (test/model/parity.test.ts).

For two tiny configs (llama with GQA, tied embeddings and llama3 RoPE scaling; qwen2 with q/k/v
biases and an untied head) this writes, under test/fixtures/model/<name>/:
  config.json, model.safetensors   seeded random weights in the Hugging Face layout
  batch.json                       a fixed batch (mixed left/right padding) and the loss weights
  reference.safetensors            logits, sequence log-probs (sum, mean, count) and the gradient of
                                   loss = sum_b w_sum[b] * sum_b + w_mean[b] * mean_b for every weight

The model is written here from the Hugging Face definitions (modeling_llama.py / modeling_qwen2.py)
with plain torch ops, computed in float64 and stored as float32 (the forward follows the weights'
dtype, so bench/model-torch.py reuses it in float32). Uses only torch, json and struct.
Run: /usr/bin/python3 scripts/make-model-fixtures.py   (Debian python3-torch)
"""

import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'model')

CONFIGS = {
    'llama-gqa-tied': {
        'architectures': ['LlamaForCausalLM'], 'model_type': 'llama',
        'vocab_size': 61, 'hidden_size': 32, 'intermediate_size': 64, 'num_hidden_layers': 2,
        'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 8, 'hidden_act': 'silu',
        'max_position_embeddings': 64, 'rms_norm_eps': 1e-6, 'rope_theta': 10000.0,
        'rope_scaling': {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
                         'high_freq_factor': 4.0, 'original_max_position_embeddings': 16},
        'tie_word_embeddings': True, 'attention_bias': False, 'mlp_bias': False,
    },
    'qwen2-bias': {
        'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2',
        'vocab_size': 53, 'hidden_size': 32, 'intermediate_size': 48, 'num_hidden_layers': 2,
        'num_attention_heads': 4, 'num_key_value_heads': 2, 'hidden_act': 'silu',
        'max_position_embeddings': 64, 'rms_norm_eps': 1e-6, 'rope_theta': 1000000.0,
        'rope_scaling': None, 'tie_word_embeddings': False, 'use_sliding_window': False,
    },
}

# Rows: attention mask as (left pad, tokens, right pad) and the number of response tokens at the end
# of the real tokens.
LAYOUT = [(0, 9, 3, 5), (2, 10, 0, 5), (0, 12, 0, 6), (4, 8, 0, 5)]
T = 12


def weight_shapes(c):
    h, m = c['hidden_size'], c['intermediate_size']
    d = c.get('head_dim') or h // c['num_attention_heads']
    q, kv = c['num_attention_heads'] * d, c['num_key_value_heads'] * d
    qkv_bias = c['model_type'] == 'qwen2' or c.get('attention_bias', False)
    shapes = {'model.embed_tokens.weight': (c['vocab_size'], h)}
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}'
        shapes[f'{p}.input_layernorm.weight'] = (h,)
        for name, out, inp in [('q_proj', q, h), ('k_proj', kv, h), ('v_proj', kv, h), ('o_proj', h, q)]:
            shapes[f'{p}.self_attn.{name}.weight'] = (out, inp)
            if qkv_bias and name != 'o_proj':
                shapes[f'{p}.self_attn.{name}.bias'] = (out,)
        shapes[f'{p}.post_attention_layernorm.weight'] = (h,)
        for name, out, inp in [('gate_proj', m, h), ('up_proj', m, h), ('down_proj', h, m)]:
            shapes[f'{p}.mlp.{name}.weight'] = (out, inp)
    shapes['model.norm.weight'] = (h,)
    if not c['tie_word_embeddings']:
        shapes['lm_head.weight'] = (c['vocab_size'], h)
    return shapes


def random_weights(c, gen):
    w = {}
    for key, shape in weight_shapes(c).items():
        if key.endswith('norm.weight'):
            t = 1 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif key.endswith('.bias'):
            t = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            t = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(shape[1])
        # Round to float32 first: both sides then start from the same stored values.
        w[key] = t.float().double().requires_grad_(True)
    return w


def inv_frequencies(c):
    d = c.get('head_dim') or c['hidden_size'] // c['num_attention_heads']
    inv = 1.0 / (c['rope_theta'] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    s = c.get('rope_scaling')
    if s and s.get('rope_type', s.get('type')) == 'llama3':  # _compute_llama3_parameters
        old, factor = s['original_max_position_embeddings'], s['factor']
        low_wavelen, high_wavelen = old / s['low_freq_factor'], old / s['high_freq_factor']
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - s['low_freq_factor']) / (s['high_freq_factor'] - s['low_freq_factor'])
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def linear(x, w, key):
    y = x @ w[key + '.weight'].T
    return y + w[key + '.bias'] if key + '.bias' in w else y


def forward(c, w, ids, mask):
    b, t = ids.shape
    h, nh, nkv = c['hidden_size'], c['num_attention_heads'], c['num_key_value_heads']
    d = c.get('head_dim') or h // nh
    eps = c['rms_norm_eps']
    dtype = w['model.embed_tokens.weight'].dtype
    pos = (mask.cumsum(-1) - 1).clamp(min=0).double()
    freqs = pos[:, :, None] * inv_frequencies(c)[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None].to(dtype), emb.sin()[:, None].to(dtype)  # (B, 1, T, D)
    allowed = torch.tril(torch.ones(t, t, dtype=torch.bool))[None] & mask.bool()[:, None, :]
    bias = torch.zeros(b, 1, t, t, dtype=dtype).masked_fill(~allowed[:, None], torch.finfo(dtype).min)
    x = w['model.embed_tokens.weight'][ids]
    for i in range(c['num_hidden_layers']):
        p = f'model.layers.{i}'
        n = rms_norm(x, w[f'{p}.input_layernorm.weight'], eps)
        q = linear(n, w, f'{p}.self_attn.q_proj').view(b, t, nh, d).transpose(1, 2)
        k = linear(n, w, f'{p}.self_attn.k_proj').view(b, t, nkv, d).transpose(1, 2)
        v = linear(n, w, f'{p}.self_attn.v_proj').view(b, t, nkv, d).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)  # repeat_kv
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(d) + bias, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, t, nh * d)
        x = x + linear(o, w, f'{p}.self_attn.o_proj')
        n = rms_norm(x, w[f'{p}.post_attention_layernorm.weight'], eps)
        gate = linear(n, w, f'{p}.mlp.gate_proj')
        x = x + linear(torch.nn.functional.silu(gate) * linear(n, w, f'{p}.mlp.up_proj'), w, f'{p}.mlp.down_proj')
    x = rms_norm(x, w['model.norm.weight'], eps)
    head = w['model.embed_tokens.weight'] if c['tie_word_embeddings'] else w['lm_head.weight']
    return x @ head.T


def sequence_logps(logits, ids, response):
    """Log-probs of the response tokens: token t is scored by the logits at t - 1."""
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    m = response[:, 1:].to(logits.dtype)
    total = (logp * m).sum(-1)
    count = m.sum(-1)
    return total, total / count, count


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].detach().float().contiguous()
        raw = struct.pack(f'<{data.numel()}f', *data.flatten().tolist())
        header[name] = {'dtype': 'F32', 'shape': list(data.shape), 'data_offsets': [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(',', ':'))
    text += ' ' * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text.encode())
        for raw in blobs:
            f.write(raw)


def make(name, c, seed):
    gen = torch.Generator().manual_seed(seed)
    w = random_weights(c, gen)
    ids = torch.zeros(len(LAYOUT), T, dtype=torch.long)
    mask = torch.zeros(len(LAYOUT), T, dtype=torch.long)
    response = torch.zeros(len(LAYOUT), T, dtype=torch.long)
    for r, (left, n, _right, resp) in enumerate(LAYOUT):
        ids[r, left:left + n] = torch.randint(0, c['vocab_size'], (n,), generator=gen)
        mask[r, left:left + n] = 1
        response[r, left + n - resp:left + n] = 1
    w_sum = torch.randn(len(LAYOUT), generator=gen, dtype=torch.float64)
    w_mean = torch.randn(len(LAYOUT), generator=gen, dtype=torch.float64)
    logits = forward(c, w, ids, mask)
    total, mean, count = sequence_logps(logits, ids, response)
    loss = (w_sum * total + w_mean * mean).sum()
    grads = torch.autograd.grad(loss, list(w.values()))

    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(c, f, indent=2)
        f.write('\n')
    write_safetensors(os.path.join(out, 'model.safetensors'), w)
    with open(os.path.join(out, 'batch.json'), 'w') as f:
        json.dump({'input_ids': ids.tolist(), 'attention_mask': mask.tolist(), 'response_mask': response.tolist(),
                   'loss_weights': {'sum': w_sum.tolist(), 'mean': w_mean.tolist()},
                   'torch_version': torch.__version__}, f, indent=1)
        f.write('\n')
    ref = {'logits': logits, 'logps.sum': total, 'logps.mean': mean, 'logps.count': count, 'loss': loss.reshape(1)}
    ref.update({f'grad.{k}': g for k, g in zip(w.keys(), grads)})
    write_safetensors(os.path.join(out, 'reference.safetensors'), ref)
    print(f'{name}: loss {loss.item():.6f}, logps.sum {[round(x, 4) for x in total.tolist()]}')


if __name__ == '__main__':
    for i, (name, config) in enumerate(CONFIGS.items()):
        make(name, config, 1234 + i)
