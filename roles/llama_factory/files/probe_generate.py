"""Generation probe for the verify gate (runs in the fine-tuning venv, prints one JSON line).

Loads the merged model and tokenizer the way a server would, builds a chat prompt with
the model's own chat template, generates greedily and reports whether eos ended it.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    model_dir, prompt, max_new = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=max_new, do_sample=False, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    new = out[0][ids["input_ids"].shape[1]:].tolist()
    print(json.dumps({"loaded": True, "stopped": tok.eos_token_id in new, "new_tokens": len(new),
                      "text": tok.decode(new, skip_special_tokens=True), "tokenizer_class": type(tok).__name__}))


if __name__ == "__main__":
    main()
