"""Loads what scripts/hf-compat.ts wrote with transformers (AutoModelForCausalLM, AutoTokenizer) and
PEFT (PeftModel) and compares logits and token ids with ours. Prints one JSON line.
Usage: python3 scripts/hf-compat-check.py <dir>   (needs torch, transformers and peft)
"""

import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

out = sys.argv[1]
ours = json.load(open(os.path.join(out, 'ours.json')))
ids = torch.tensor(ours['ids'])
tok = AutoTokenizer.from_pretrained(os.path.join(out, 'tiny'))
chat = tok.apply_chat_template(ours['messages'], add_generation_prompt=True, tokenize=False)
res = {
    'text_ids_equal': tok(ours['text'], add_special_tokens=False)['input_ids'] == ours['text_ids'],
    'chat_ids_equal': tok(chat, add_special_tokens=False)['input_ids'] == ours['chat_ids'],
}
model = AutoModelForCausalLM.from_pretrained(os.path.join(out, 'tiny'), dtype=torch.float32).eval()
with torch.no_grad():
    base = model(input_ids=ids).logits
    want = torch.tensor(ours['base']).view(base.shape)
    res['base_rel_err'] = ((base - want).abs().max() / want.abs().max()).item()
    lora = PeftModel.from_pretrained(model, os.path.join(out, 'adapter')).eval()(input_ids=ids).logits
    want = torch.tensor(ours['lora']).view(lora.shape)
    res['lora_rel_err'] = ((lora - want).abs().max() / want.abs().max()).item()
    res['lora_shift'] = (lora - base).abs().max().item()
print(json.dumps(res))
