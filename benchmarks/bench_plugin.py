"""The axolotl plugin's cost, against axolotl's own path in the same run.

1. Preprocessing: YAML -> tokenized, prepared dataset for N Markov examples, through the
   plugin (generation included) vs the same examples as a plain JSONL with axolotl's built-in
   ``alpaca`` type. Each path runs in a fresh process with a fresh datasets cache; the clock
   starts after imports (``load_cfg`` + ``load_datasets``).
2. CPU training throughput of the tiny recipe (``recipes/cpu-tiny-markov.yml``'s model and
   batch) over one epoch of a small set: rows padded to ``sequence_len``, padded to the
   longest row of each batch, and packed (``sample_packing``; axolotl warns that SDPA does
   not keep packed rows from attending to each other). Real tokens/s counts no padding.

    python benchmarks/bench_plugin.py [--examples 100000] [--train-examples 6400] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import yaml
from _record import add_json_flag, write  # noqa: E402

SETTINGS = {"num_rules": 2000, "test_examples": 1000, "seen_test_examples": 1000, "seed": 0}
COMMON = {
    "sequence_len": 64,
    "val_set_size": 0,
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "micro_batch_size": 64,
    "optimizer": "adamw_torch",
    "learning_rate": 1e-3,
    "save_strategy": "no",
    "dataset_processes": 2,
}


def _env(tmp: Path) -> dict:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HF_DATASETS_CACHE": str(tmp / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "AXOLOTL_DO_NOT_TRACK": "1",
        "DO_NOT_TRACK": "1",
        "WANDB_MODE": "disabled",
        "DIVPLUGIN_CACHE": str(tmp / "cache"),
    }


def _prepare_once(cfg_path: str) -> None:
    """(child process) load the config and prepare the dataset; prints seconds and rows."""
    from axolotl.cli.config import load_cfg
    from axolotl.common.datasets import load_datasets

    t0 = time.perf_counter()
    cfg = load_cfg(cfg_path)
    meta = load_datasets(cfg=cfg)
    print(json.dumps({"seconds": time.perf_counter() - t0, "rows": len(meta.train_dataset)}))


def _run_prepare(cfg: dict, tmp: Path, tag: str) -> dict:
    work = tmp / tag
    work.mkdir()
    cfg = {**cfg, "dataset_prepared_path": str(work / "prepared"), "output_dir": str(work / "out")}
    path = work / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, __file__, "--_prepare", str(path)], cwd=work, env=_env(work), capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"{tag} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_preprocess(model: Path, tmp: Path, examples: int) -> dict:
    from divplugin.data.writer import write_dataset
    from divplugin.generators import create
    from divplugin.generators.settings import resolve_generator

    settings = {**SETTINGS, "num_examples": examples}
    plugin_cfg = {
        **COMMON,
        "base_model": str(model),
        "plugins": ["divplugin.axolotl.DivPlugin"],
        "divplugin_preset": "cpu-small",
        "divplugin_settings": settings,
    }
    name, config = resolve_generator(None, "cpu-small", [("settings", settings)])
    plain_dir = tmp / "plain-data"
    write_dataset(create(name, config), plain_dir)
    # the alpaca template adds ~110 characters of boilerplate to each row
    plain_cfg = {
        **COMMON,
        "base_model": str(model),
        "sequence_len": 256,
        "datasets": [{"path": str(plain_dir / "train.jsonl"), "ds_type": "json", "type": "alpaca"}],
    }
    plain = _run_prepare(plain_cfg, tmp, "plain")
    plugin = _run_prepare(plugin_cfg, tmp, "plugin")
    print(f"\npreprocessing {examples:,} Markov examples, YAML -> tokenized prepared dataset (2 dataset processes)")
    print(f"  {'path':<44} {'seconds':>8} {'rows':>9} {'examples/s':>11}")
    for label, r in (("divplugin plugin (generation included)", plugin), ("plain JSONL, axolotl 'alpaca' type", plain)):
        print(f"  {label:<44} {r['seconds']:>8.1f} {r['rows']:>9,} {r['rows'] / r['seconds']:>11,.0f}")
    ratio = round(plugin["seconds"] / plain["seconds"], 3)  # printed as recorded: one rounding
    print(f"  plugin / plain time: {ratio:.2f}x (goal <= 1.1x)")
    return {"examples": examples, "plugin": plugin, "plain": plain, "ratio": ratio}


def _train(cfg: dict, tmp: Path, tag: str) -> float:
    work = tmp / tag
    work.mkdir()
    cfg = {**cfg, "dataset_prepared_path": str(work / "prepared"), "output_dir": str(work / "out")}
    (work / "cfg.yml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "axolotl"), "train", "cfg.yml"],
        cwd=work,
        env=_env(work),
        capture_output=True,
        text=True,
    )
    found = re.findall(r"'train_runtime': '?([0-9.]+)", proc.stdout + proc.stderr)
    if proc.returncode or not found:
        raise SystemExit(f"training ({tag}) failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return float(found[-1])


def bench_training(model: Path, tmp: Path, examples: int) -> dict:
    from transformers import AutoTokenizer

    from divplugin.axolotl.markov import MarkovPromptStrategy
    from divplugin.generators import create
    from divplugin.generators.settings import resolve_generator

    settings = {**SETTINGS, "num_examples": examples}
    name, config = resolve_generator(None, "cpu-small", [("settings", settings)])
    rows = list(create(name, config).iter_split("train"))
    strat = MarkovPromptStrategy(AutoTokenizer.from_pretrained(model), config.prompt_template)
    ids = strat.tokenize_prompt({k: [r[k] for r in rows] for k in ("instruction", "input", "output")})["input_ids"]
    real = sum(map(len, ids))
    base = {
        **COMMON,
        "base_model": str(model),
        "plugins": ["divplugin.axolotl.DivPlugin"],
        "divplugin_preset": "cpu-small",
        "divplugin_settings": settings,
        "num_epochs": 1,
        "logging_steps": 50,
        "lr_scheduler": "linear",
    }
    variants = [
        ("padded to sequence_len (64)", {"pad_to_sequence_len": True}),
        ("padded to the batch's longest row", {"pad_to_sequence_len": False}),
        (
            "packed (sample_packing, 512 x 5)",
            {"sample_packing": True, "sequence_len": 512, "micro_batch_size": 5, "pad_to_sequence_len": True},
        ),
    ]
    print(
        f"\nCPU training, tiny recipe model, one epoch of {examples:,} examples ({real:,} real tokens, "
        f"{real / len(ids):.1f} per row; {os.cpu_count()} cores)"
    )
    print(f"  {'batches':<36} {'seconds':>8} {'real tokens/s':>14}")
    first = None
    out = {"examples": examples, "real_tokens": real, "tokens_per_row": round(real / len(ids), 2), "runs": {}}
    for i, ((label, extra), key) in enumerate(zip(variants, ("padded", "longest", "packed"))):
        seconds = _train({**base, **extra}, tmp, f"train-{i}")
        first = first or seconds
        print(f"  {label:<36} {seconds:>8.1f} {real / seconds:>14,.0f}   ({first / seconds:.2f}x the padded run)")
        out["runs"][key] = {
            "batches": label,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(real / seconds, 1),
            "speedup": round(first / seconds, 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100_000, help="examples to preprocess")
    ap.add_argument("--train-examples", type=int, default=6400, help="examples in the training epoch")
    ap.add_argument("--skip-train", action="store_true", help="only the preprocessing comparison")
    ap.add_argument("--_prepare", help=argparse.SUPPRESS)
    add_json_flag(ap, "bench-plugin")
    args = ap.parse_args(argv)
    if args._prepare:
        _prepare_once(args._prepare)
        return 0
    from divplugin.models import build_tiny_llama

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_llama(tmp / "model", layers=3, hidden=128, heads=4, max_len=512)
        figures = {"preprocess": bench_preprocess(model, tmp, args.examples)}
        if not args.skip_train:
            figures["training"] = bench_training(model, tmp, args.train_examples)
    write(args.json, figures, argv, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
