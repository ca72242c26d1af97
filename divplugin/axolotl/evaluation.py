"""The score the paper is about, while the model trains (``divplugin_eval``): every N steps and
at the last one, a fixed seeded sample of the held-out rows is answered greedily, in batches,
in the training process, and scored as the ``divplugin_markov`` lm-eval tasks score it (the
first line of the answer, exactly). The scores go through the Trainer's log (so to whatever the
recipe reports to) and to ``OUTPUT_DIR/divplugin_eval.jsonl``. One process scores: the main one
(world process zero); under several ranks the others go on and meet it at the next step."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from divplugin.core.fsutil import atomic_file
from divplugin.data.manifest import load_manifest, prompt_template
from divplugin.data.records import completion_prompt, read_jsonl
from divplugin.generators.base import answer_of

SPLIT_NAMES = {"test": "unseen", "test_seen": "seen"}
LOG_FILE = "divplugin_eval.jsonl"
ANSWERS_FILE = "divplugin_eval_answers.jsonl"  # the latest evaluation's answers, row by row


def sample_rows(folder: Path, split: str, examples: int, seed: int) -> list[tuple[int, dict[str, Any]]]:
    """(index in the split's file, row) of the rows of ``split`` that are scored: ``examples`` of
    them, a seeded sample kept in file order (all of them when the split holds no more)."""
    rows = read_jsonl(folder / f"{split}.jsonl")
    keep = range(len(rows))
    if len(rows) > examples:
        keep = np.sort(np.random.default_rng([seed, 36]).choice(len(rows), examples, replace=False)).tolist()
    return [(int(i), rows[int(i)]) for i in keep]


def generate_answers(model: Any, tokenizer: Any, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy completions of ``prompts``, ``batch_size`` at a time, left-padded; each stops at its
    own end of sequence (the answer's end is its first newline, cut by :func:`answer_of`)."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            # as lm-eval's hf model encodes a prompt (no special tokens added), so that the scores agree
            batch = tokenizer(
                prompts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            )
            batch = {k: v.to(model.device) for k, v in batch.items()}
            with torch.no_grad():
                ids = model.generate(
                    **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, use_cache=True
                )
            new = ids[:, batch["input_ids"].shape[1] :]
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return out


def score(rows: list[dict[str, Any]], answers: list[str]) -> dict[str, float]:
    """Exact match over ``rows``, and over its has-op and no-op rows apart where it holds no-ops."""
    hits = [float(answer_of(a) == r["output"]) for r, a in zip(rows, answers)]
    out = {"exact_match": float(np.mean(hits)) if hits else 0.0}
    noop = [bool(r.get("metadata", {}).get("noop")) for r in rows]
    if any(noop):
        for name, want in (("hasop", False), ("noop", True)):
            part = [h for h, n in zip(hits, noop) if n == want]
            if part:
                out[f"{name}_exact_match"] = float(np.mean(part))
    return out


class HeldoutEval(TrainerCallback):
    """Scores held-out rows every ``every`` steps and at the last step (see the module)."""

    def __init__(self, trainer: Any, folder: Path, settings: Any, output_dir: str | Path):
        self.trainer = trainer
        self.settings = settings
        self.template = prompt_template(load_manifest(folder))
        self.rows = {s: sample_rows(folder, s, settings.examples, settings.seed) for s in settings.splits}
        self.path = Path(output_dir) / LOG_FILE
        self.seconds = 0.0
        self._scored: set[int] = set()

    def _max_new_tokens(self, tokenizer: Any) -> int:
        if self.settings.max_new_tokens:
            return int(self.settings.max_new_tokens)
        longest = max(
            len(tokenizer(r["output"] + "\n", add_special_tokens=False)["input_ids"])
            for rows in self.rows.values()
            for _, r in rows
        )
        return longest + 8

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step == 0 and state.is_world_process_zero:
            self.path.unlink(missing_ok=True)  # a new run's curve; a resumed one goes on
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        step = state.global_step
        if step in self._scored or not (step % self.settings.every == 0 or step >= state.max_steps):
            return control
        self._scored.add(step)
        if not state.is_world_process_zero:
            return control
        model = kwargs.get("model") or self.trainer.model
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer") or self.trainer.processing_class
        t0 = time.perf_counter()
        was_training = model.training
        model.eval()
        logs: dict[str, float] = {}
        records, answered = [], []
        try:
            limit = self._max_new_tokens(tokenizer)
            for split, indexed in self.rows.items():
                rows = [r for _, r in indexed]
                prompts = [completion_prompt(self.template, r["instruction"], r["input"]) for r in rows]
                answers = generate_answers(model, tokenizer, prompts, self.settings.batch_size, limit)
                scores = score(rows, answers)
                name = SPLIT_NAMES[split]
                logs.update({f"divplugin/{name}_{k}": v for k, v in scores.items()})
                records.append({"step": step, "split": split, "n": len(rows), **scores})
                answered += [
                    {
                        "step": step,
                        "split": split,
                        "index": i,
                        "answer": answer_of(a),
                        "exact_match": answer_of(a) == r["output"],
                    }
                    for (i, r), a in zip(indexed, answers)
                ]
        finally:
            if was_training:
                model.train()
        seconds = time.perf_counter() - t0
        self.seconds += seconds
        logs["divplugin/eval_seconds"] = round(seconds, 3)
        with open(self.path, "a") as f:
            for rec in records:
                f.write(json.dumps({**rec, "seconds": round(seconds, 3)}) + "\n")
        with atomic_file(self.path.with_name(ANSWERS_FILE)) as f:
            f.writelines(json.dumps(a) + "\n" for a in answered)
        self.trainer.log(logs)
        return control


def lm_eval_command(cfg: Any, settings: Any, heldout: Path | None) -> list[str]:
    """``divplugin eval`` (lm-eval with divplugin's tasks) of the model a run saved in its
    output_dir: a LoRA/QLoRA adapter over its base (``peft=``), on ``settings.device``, with the
    held-out folder as the tasks' data; results under ``OUTPUT_DIR/lm_eval``."""
    import sys

    from divplugin.core.paths import task_names

    out = Path(cfg.get("output_dir") or "./model-out").resolve()
    adapter = (out / "adapter_config.json").is_file()
    args: dict[str, Any] = {"pretrained": cfg.get("base_model") if adapter else str(out)}
    if adapter:
        args["peft"] = str(out)
    device = settings.device or _default_device()
    if device == "cpu":
        args["dtype"] = "float32"
    args.update(settings.model_args)
    cmd = [sys.executable, "-m", "divplugin", "eval", "--model", "hf"]
    cmd += ["--model_args", ",".join(f"{k}={v}" for k, v in args.items()), "--tasks", ",".join(settings.tasks)]
    cmd += ["--batch_size", str(settings.batch_size), "--device", device, "--output_path", str(out / "lm_eval")]
    if settings.limit:
        cmd += ["--limit", str(settings.limit)]
    metadata = {"data": str(heldout)} if heldout is not None else {}
    if settings.mode:
        metadata["mode"] = settings.mode
    if metadata:
        cmd += ["--metadata", json.dumps(metadata)]
    if any(task_names()[t] for t in settings.tasks):
        cmd.append("--confirm_run_unsafe_code")  # asked for in the recipe (divplugin_lm_eval)
    return cmd + list(settings.args)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_lm_eval(cfg: Any, settings: Any, heldout: Path | None) -> None:
    """Run :func:`lm_eval_command` once training has ended; its table is printed as lm-eval
    prints it. A failure raises with the command, so that it can be run again by hand."""
    import shlex
    import subprocess

    cmd = lm_eval_command(cfg, settings, heldout)
    print(f"divplugin: evaluating the trained model: {shlex.join(cmd)}", flush=True)
    rc = subprocess.run(cmd).returncode
    if rc != 0:
        raise RuntimeError(
            f"divplugin_lm_eval: divplugin eval exited with {rc}; the model is saved. Command: {shlex.join(cmd)}"
        )
