"""A spec's cost before it runs: training tokens and FLOPs per point, and the wall time they
take on a given accelerator.

Training FLOPs are ``k * params * tokens`` (Kaplan et al.): k = 6 for full training (forward
2, backward 4), k = 4 for LoRA/QLoRA (no weight gradients of the frozen base). Tokens are
examples x epochs (or steps x batch) x tokens per example, measured on the point's generated
data with the tiny model's character tokenizer, or taken from ``plan.tokens_per_example`` for
hub data. Wall time divides FLOPs by the accelerator's peak times an assumed model FLOPs
utilisation (MFU): small models and 4-bit dequantisation keep it low, so treat the result
as an order of magnitude, and measure. On ``cpu`` the peak is one core's fp32 matrix
multiply, measured when the plan is made (CPU points train one thread each).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divplugin.experiments.runner import point_config, point_id
from divplugin.experiments.spec import Point, Spec

# dense bf16 peak (TFLOP/s) of common accelerators, from their data sheets
PEAK_TFLOPS = {"h100": 989.0, "h200": 989.0, "a100": 312.0, "a40": 149.7, "l40s": 362.0, "rtx4090": 165.2}


@dataclass
class PointPlan:
    point: str
    examples: int
    epochs: float
    tokens_per_example: float
    tokens: float
    params: float
    flops: float
    hours: float


def tiny_params(layers: int, hidden: int, vocab: int = 100, max_len: int = 256, arch: str = "llama") -> float:
    """Parameters of ``divplugin model tiny``: per layer 4 d^2 (attention) + 8 d^2 (a 4d MLP;
    Llama's gated MLP of width 4d is 12 d^2), plus embeddings."""
    mlp = 12 if arch == "llama" else 8
    return layers * (4 + mlp) * hidden**2 + vocab * hidden + (0 if arch == "llama" else max_len * hidden)


def _generated_tokens_per_example(cfg: dict[str, Any]) -> float | None:
    """Mean characters (+3: the newlines and EOS the prompt strategy adds) of 200 training
    examples of the point's generated data; None when the point trains on a mixture."""
    if cfg.get("divplugin_mixture") or not (cfg.get("divplugin_preset") or cfg.get("divplugin_generator")):
        return None
    from divplugin.generators import create
    from divplugin.generators.settings import resolve_generator

    settings = dict(cfg.get("divplugin_settings") or {})
    settings.update(test_examples=0, seen_test_examples=0)
    name, gcfg = resolve_generator(
        cfg.get("divplugin_generator"), cfg.get("divplugin_preset"), [("settings", settings)]
    )
    gen = create(name, gcfg)
    rows = [gen[i] for i in range(min(200, gen.split_size("train")))]
    return sum(len(r["instruction"]) + len(r["input"]) + len(r["output"]) + 3 for r in rows) / max(len(rows), 1)


def plan_point(spec: Spec, point: Point, peak_tflops: float, mfu: float) -> PointPlan:
    cfg = point_config(spec, point, Path("plan"), {})  # paths do not matter here
    settings = cfg.get("divplugin_settings") or {}
    extra = spec.plan
    examples = int(extra.get("examples") or settings.get("num_examples") or 0)
    budget = (cfg.get("divplugin_select") or {}).get("budget")
    if budget and not extra.get("examples"):
        examples = min(examples, int(budget)) if examples else int(budget)  # trains on the chosen rows
    tpe = extra.get("tokens_per_example") or _generated_tokens_per_example(cfg) or 0.0
    batch = int(cfg.get("micro_batch_size", 1)) * int(cfg.get("gradient_accumulation_steps", 1))
    if cfg.get("max_steps"):
        epochs = cfg["max_steps"] * batch / max(examples, 1)
    else:
        epochs = float(cfg.get("num_epochs", 1))
    tokens = examples * epochs * float(tpe)
    if spec.base_model is not None:
        m = spec.base_model
        params = tiny_params(m.layers, m.hidden, max_len=m.max_len, arch=m.arch)
    else:
        params = float(extra.get("params") or 0)
    k = 4 if cfg.get("adapter") in ("lora", "qlora") else 6
    flops = k * params * tokens
    hours = flops / (peak_tflops * 1e12 * mfu) / 3600 if params and tokens else float("nan")
    return PointPlan(point_id(point), examples, round(epochs, 2), round(float(tpe), 1), tokens, params, flops, hours)


def cpu_core_tflops(size: int = 1024, repeats: int = 20) -> float:
    """This machine's fp32 matrix-multiply speed on one core (TFLOP/s), measured: the peak a
    CPU point with one thread (``--parallel`` = cores) can reach."""
    import time

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        for _ in range(3):
            a @ b
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        return 2 * size**3 * repeats / (time.perf_counter() - t) / 1e12
    finally:
        torch.set_num_threads(before)


ACCELERATORS = (*PEAK_TFLOPS, "cpu")


def plan(spec: Spec, gpu: str = "h100", mfu: float | None = None) -> tuple[list[PointPlan], dict[str, Any]]:
    """Per-point plans and the assumptions (accelerator, peak, MFU) they rest on; ``gpu="cpu"``:
    one core of this machine, its fp32 peak measured now."""
    if gpu not in ACCELERATORS:
        from divplugin.errors import ConfigError

        raise ConfigError(f"unknown accelerator {gpu!r}; known: {', '.join(ACCELERATORS)}", "--gpu")
    mfu = mfu if mfu is not None else float(spec.plan.get("mfu", 0.3))
    peak = cpu_core_tflops() if gpu == "cpu" else PEAK_TFLOPS[gpu]
    rows = [plan_point(spec, p, peak, mfu) for p in spec.points()]
    return rows, {"gpu": gpu, "peak_tflops": peak, "mfu": mfu}
