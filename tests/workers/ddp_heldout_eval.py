"""One rank of a two-rank DDP training on the CPU (gloo), launched by torchrun from
tests/test_axolotl_plugin.py: the plugin's held-out evaluation (``HeldoutEval``) runs at its
steps while both ranks train, as it does inside axolotl's Trainer, and each rank writes what it
saw to ``OUT/rank<K>.json``.

    torchrun --nproc_per_node 2 tests/workers/ddp_heldout_eval.py MODEL DATA OUT STEPS EVERY
"""

import hashlib
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist
from transformers import AutoModelForCausalLM, AutoTokenizer

from divplugin.axolotl.args import TrainingEval
from divplugin.axolotl.evaluation import HeldoutEval


def main(model_dir: str, data: str, out: str, steps: int, every: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=timedelta(seconds=180))
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
    logged: list[dict] = []
    trainer = SimpleNamespace(model=model, processing_class=tok, log=logged.append)
    settings = TrainingEval(every=every, examples=12, batch_size=4, max_new_tokens=12)
    callback = HeldoutEval(trainer, Path(data), settings, out)
    state = SimpleNamespace(global_step=0, max_steps=steps, is_world_process_zero=rank == 0)
    callback.on_train_begin(None, state, None)
    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own batches, as a sampler gives
    for step in range(1, steps + 1):
        ids = torch.randint(3, model.config.vocab_size, (4, 24), generator=gen)
        ddp(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
        state.global_step = step
        callback.on_step_end(None, state, None, model=model, processing_class=tok)
    dist.barrier()
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().numpy().tobytes())
    record = {"rank": rank, "logged": logged, "weights": digest.hexdigest()}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    model_dir, data, out, steps, every = sys.argv[1:6]
    os.makedirs(out, exist_ok=True)
    main(model_dir, data, out, int(steps), int(every))
