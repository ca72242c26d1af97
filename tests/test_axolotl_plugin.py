"""The axolotl plugin and recipes, with the real axolotl on CPU and tiny local models."""

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from divplugin.axolotl.args import DivpluginArgs, resolve

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yml"))
SMALL = {"num_rules": 30, "num_examples": 600, "test_rules": 20, "test_examples": 50, "seen_test_examples": 40}


# -- the plugin's keys (pydantic only) ----------------------------------------------
def test_args_resolve_preset_and_settings():
    sel = resolve({"divplugin_preset": "cpu-small", "divplugin_settings": {"num_rules": 77}})
    name, cfg = sel.name, sel.config
    assert sel.kind == "generated"
    assert resolve({"divplugin_settings": {"num_rules": 77}, "divplugin_preset": "cpu-small"}) is sel  # resolved once
    assert name == "markov_rewrite" and cfg.num_rules == 77 and cfg.input_len == 12
    assert resolve({"base_model": "x"}) is None


@pytest.mark.parametrize(
    "keys, named",
    [
        ({"divplugin_preset": "cpu-small", "divplugin_settings": {"num_rulez": 5}}, "num_rulez"),
        ({"divplugin_preset": "cpu-smal"}, "divplugin_preset"),
        ({"divplugin_generator": "markov_rewrit"}, "divplugin_generator"),
        ({"divplugin_preset": "cpu-small", "divplugin_settings": {"num_rules": -3}}, "num_rules"),
        ({"divplugin_preset": "cpu-small", "divplugin_settings": [1, 2]}, "divplugin_settings"),
        ({"divplugin_settings": {"num_rules": 5}}, "divplugin_generator"),
        ({"divplugin_preset": "cpu-small", "divplugin_workers": 0}, "divplugin_workers"),
        ({"divplugin_preset": "cpu-small", "divplugin_eval_split": "train"}, "divplugin_eval_split"),
        ({"divplugin_preset": "cpu-small", "divplugin_eval": {"splits": ["train"]}}, "divplugin_eval.splits"),
        ({"divplugin_preset": "cpu-small", "divplugin_eval": {"every": 0}}, "divplugin_eval.every"),
        ({"divplugin_preset": "cpu-small", "divplugin_eval": {"evry": 10}}, "divplugin_eval.evry"),
        ({"divplugin_preset": "cpu-small", "divplugin_eval": {"examples": 0}}, "divplugin_eval.examples"),
        ({"divplugin_preset": "cpu-small", "divplugin_lm_eval": {"tasks": []}}, "divplugin_lm_eval.tasks"),
        (
            {"divplugin_preset": "cpu-small", "divplugin_lm_eval": {"tasks": ["divplugin_markov_unsen"]}},
            "did you mean 'divplugin_markov_unseen'",
        ),
        (
            {"divplugin_preset": "cpu-small", "divplugin_lm_eval": {"tasks": ["divplugin_humaneval"]}},
            "divplugin_humaneval run the model's programs: set divplugin_lm_eval.confirm_run_unsafe_code: true",
        ),
        ({"divplugin_mixture": "deepseek-table1"}, "divplugin_mixture_row: deepseek-table1 is a grid"),
        (
            {"divplugin_mixture": "deepseek-table1", "divplugin_mixture_row": "oss18k-alpaca"},
            "did you mean 'oss18k-alpaca2k'",
        ),
        ({"divplugin_mixture": "deepseek-table9"}, "divplugin_mixture: .*did you mean 'deepseek-table1'"),
        (
            {
                "divplugin_mixture": "deepseek-table1",
                "divplugin_mixture_row": "oss20k",
                "divplugin_preset": "cpu-small",
            },
            "not both",
        ),
        ({"divplugin_mixture_row": "oss20k"}, "without divplugin_mixture"),
        (
            {
                "divplugin_mixture": "deepseek-table1",
                "divplugin_mixture_row": "oss20k",
                "divplugin_mixture_paths": {"osss": "x.jsonl"},
            },
            "no source 'osss'",
        ),
    ],
)
def test_bad_args_are_named(keys, named):
    with pytest.raises(ValueError, match=named):
        DivpluginArgs(**keys)


# -- with axolotl -------------------------------------------------------------------
axolotl = pytest.importorskip("axolotl", reason="needs the [axolotl] extra")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from divplugin.models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("model") / "tiny", layers=2, hidden=64, heads=4, max_len=128)


def _load_cfg(cfg: dict, tmp_path: Path):
    from axolotl.cli.config import load_cfg

    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        return load_cfg(str(path))
    finally:
        os.chdir(cwd)


def _recipe(path: Path, tiny_model: Path, tmp_path: Path, local_sources=None) -> dict:
    cfg = yaml.safe_load(path.read_text())
    cfg["base_model"] = str(tiny_model)  # no download here
    cfg["output_dir"] = str(tmp_path / "out")
    cfg["dataset_prepared_path"] = str(tmp_path / "prepared")
    if cfg.get("divplugin_mixture"):
        from divplugin.mixtures import load_mixture

        paths, cache = local_sources
        cfg["divplugin_mixture_paths"] = {s.name: paths[s.name] for s in load_mixture(cfg["divplugin_mixture"]).sources}
        cfg["divplugin_cache_dir"] = str(cache)
    elif any(k.startswith("divplugin_") for k in cfg):
        cfg["divplugin_cache_dir"] = str(tmp_path / "gen")
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_validates(recipe, tiny_model, tmp_path, request, monkeypatch):
    local = None
    if yaml.safe_load(recipe.read_text()).get("divplugin_mixture"):
        local = request.getfixturevalue("mixture_sources")
        monkeypatch.setenv(
            "DIVPLUGIN_BENCHMARKS", str(request.getfixturevalue("benchmarks_dir"))
        )  # MBPP for decontamination
    cfg = _load_cfg(_recipe(recipe, tiny_model, tmp_path, local), tmp_path)
    assert cfg.datasets, f"{recipe.name}: no dataset"
    for ds in cfg.datasets:
        if str(ds["type"]).startswith("divplugin.") or cfg.get("divplugin_mixture"):
            assert Path(ds["path"]).is_file(), ds["path"]
    if cfg.get("divplugin_mixture"):
        manifest = json.loads((Path(cfg.datasets[-1]["path"]).parent / "manifest.json").read_text())
        assert manifest["examples"] == sum(manifest["counts"].values()) and manifest["mixture"].endswith(
            cfg["divplugin_mixture_row"]
        )


def test_recipes_readme_lists_every_recipe():
    text = (ROOT / "recipes" / "README.md").read_text()
    for recipe in RECIPES:
        assert recipe.name in text, f"recipes/README.md does not mention {recipe.name}"


def _base(tiny_model: Path, tmp_path: Path, **extra) -> dict:
    cfg = {
        "base_model": str(tiny_model),
        "plugins": ["divplugin.axolotl.DivPlugin"],
        "divplugin_preset": "cpu-small",
        "divplugin_settings": dict(SMALL),
        "divplugin_cache_dir": str(tmp_path / "gen"),
        "sequence_len": 64,
        "micro_batch_size": 16,
        "max_steps": 2,
        "learning_rate": 1e-3,
        "optimizer": "adamw_torch",
        "bf16": False,
        "fp16": False,
        "tf32": False,
        "val_set_size": 0,
        "save_strategy": "no",
        "output_dir": str(tmp_path / "out"),
        "dataset_prepared_path": str(tmp_path / "prepared"),
    }
    cfg.update(extra)
    return cfg


def test_bad_plugin_settings_fail_at_config_load(tiny_model, tmp_path):
    cfg = _base(tiny_model, tmp_path)
    cfg["divplugin_settings"] = {**SMALL, "pattern_len": [0, 2]}
    with pytest.raises(Exception, match="pattern_len"):
        _load_cfg(cfg, tmp_path)
    assert not (tmp_path / "gen").exists() or not any((tmp_path / "gen").glob("markov_rewrite-*/manifest.json"))


def test_an_eval_the_data_cannot_serve_fails_at_config_load(tiny_model, tmp_path):
    """divplugin_eval asking for more held-out rows than the data has stops at config load."""
    cfg = _base(tiny_model, tmp_path, divplugin_eval={"examples": 45})  # test holds 50, test_seen 40
    with pytest.raises(Exception, match=r"divplugin_eval.examples: asks for 45 rows but the test_seen split holds 40"):
        _load_cfg(cfg, tmp_path)
    assert _load_cfg(_base(tiny_model, tmp_path, divplugin_eval={"examples": 40}), tmp_path).divplugin_eval


def test_rewrite_tasks_after_training_need_generated_data(tiny_model, tmp_path):
    """divplugin_lm_eval with the string-rewrite tasks on a run without generated data stops at
    config load, before any training; code tasks alone, confirmed, are accepted."""
    cfg = _base(tiny_model, tmp_path, divplugin_lm_eval={"tasks": ["divplugin_markov"]})
    for key in ("divplugin_preset", "divplugin_settings", "divplugin_cache_dir"):
        del cfg[key]
    cfg["datasets"] = [{"path": str(tmp_path / "own.jsonl"), "type": "alpaca", "ds_type": "json"}]
    with pytest.raises(Exception, match="divplugin_lm_eval.tasks: divplugin_markov score held-out rules"):
        _load_cfg(cfg, tmp_path)
    cfg["divplugin_lm_eval"] = {"tasks": ["divplugin_humaneval"], "confirm_run_unsafe_code": True}
    assert _load_cfg(cfg, tmp_path).divplugin_lm_eval["tasks"] == ["divplugin_humaneval"]


def test_a_plugin_that_cannot_be_imported_fails_the_run(tiny_model, tmp_path):
    cfg = _base(tiny_model, tmp_path)
    cfg["plugins"] = ["divplugin.axolotl.NoSuchPlugin"]
    with pytest.raises(Exception, match="NoSuchPlugin"):
        _load_cfg(cfg, tmp_path)


def test_settings_name_the_prepared_data(tiny_model, tmp_path):
    first = _load_cfg(_base(tiny_model, tmp_path), tmp_path)
    path = Path(first.datasets[0]["path"])
    stamp = path.stat().st_mtime_ns
    again = _load_cfg(_base(tiny_model, tmp_path), tmp_path)
    assert Path(again.datasets[0]["path"]) == path and path.stat().st_mtime_ns == stamp  # reused, not rewritten
    changed = _base(tiny_model, tmp_path)
    changed["divplugin_settings"] = {**SMALL, "num_rules": 31}
    other = Path(_load_cfg(changed, tmp_path).datasets[0]["path"])
    assert other != path and other.read_bytes() != path.read_bytes()
    assert len(first.datasets) == 1  # the plugin's entry, once


def test_select_trains_on_the_chosen_rows(tiny_model, tmp_path):
    """divplugin_select: the dataset axolotl gets is the subset, made once, with the pool's
    held-out rules beside it for evaluation; a bad key is named."""
    cfg = _base(tiny_model, tmp_path, divplugin_select={"budget": 150, "method": "kcenter", "seed": 2})
    loaded = _load_cfg(cfg, tmp_path)
    path = Path(loaded.datasets[0]["path"])
    rows = [json.loads(line) for line in path.open()]
    assert path.parent.parent.name == "selected" and len(rows) == 150
    assert json.loads((path.parent / "manifest.json").read_text())["selection"]["method"] == "kcenter"
    pool = next((tmp_path / "gen").glob("markov_rewrite-*/train.jsonl"))
    pool_rows = [json.loads(line) for line in pool.open()]
    assert len(pool_rows) == SMALL["num_examples"] and all(r in pool_rows for r in rows[:20])
    assert (path.parent / "test.jsonl").read_bytes() == (pool.parent / "test.jsonl").read_bytes()
    assert Path(_load_cfg(cfg, tmp_path).datasets[0]["path"]) == path  # reused
    for bad, named in (
        ({"budget": 150, "methd": "kcenter"}, "divplugin_select.methd: unknown setting; did you mean 'method'"),
        ({"method": "kcenter"}, "divplugin_select.budget"),
        ({"budget": 10, "method": "kcentre"}, "divplugin_select.method: unknown method 'kcentre'"),
        ({"budget": 10, "method": "balanced"}, "divplugin_select.by: the balanced method evens out"),
        (
            {"budget": 10, "method": "kcenter", "by": "metadata.rule_id"},
            "divplugin_select.by: grouping by a field is for the random and balanced methods",
        ),
        ({"budget": 10, "method": "random", "by": 3}, "divplugin_select.by: a field name"),
    ):
        with pytest.raises(Exception, match=named):
            _load_cfg(_base(tiny_model, tmp_path, divplugin_select=bad), tmp_path)


def test_select_by_a_field_balances_its_groups(tiny_model, tmp_path):
    """divplugin_select {method: balanced, by: FIELD}: the rows axolotl gets hold every group
    with one cap; a request without `by` keeps the folder name it had before `by` existed."""
    from divplugin.axolotl.args import subset_request
    from divplugin.data.cache import subset_key
    from divplugin.diversity.select import capped_quota

    cfg = _base(tiny_model, tmp_path, divplugin_select={"budget": 150, "method": "balanced", "by": "metadata.rule_id"})
    path = Path(_load_cfg(cfg, tmp_path).datasets[0]["path"])
    rows = [json.loads(line) for line in path.open()]
    pool = [json.loads(line) for line in next((tmp_path / "gen").glob("markov_rewrite-*/train.jsonl")).open()]
    counts = collections.Counter(r["metadata"]["rule_id"] for r in rows)
    sizes = collections.Counter(r["metadata"]["rule_id"] for r in pool)
    names = sorted(sizes)
    assert len(rows) == 150 and [counts[g] for g in names] == capped_quota(150, [sizes[g] for g in names])
    assert json.loads((path.parent / "manifest.json").read_text())["selection"]["by"] == "metadata.rule_id"
    assert subset_key(subset_request({"budget": 50000, "method": "kcenter"})) == "kcenter50000-105f4557d599"


def test_markov_strategy_masks_the_prompt(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from divplugin.axolotl.markov import MarkovPromptStrategy
    from divplugin.data.records import completion_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model)
    strat = MarkovPromptStrategy(tok, "{instruction}\n{input}")
    out = strat.tokenize_prompt({"instruction": ["ab -> c"], "input": ["xaby"], "output": ["xcy"]})
    ids, labels = out["input_ids"][0], out["labels"][0]
    prompt = completion_prompt("{instruction}\n{input}", "ab -> c", "xaby")
    assert tok.decode(ids, skip_special_tokens=True) == prompt + "xcy\n"
    assert labels[: len(prompt)] == [-100] * len(prompt)
    assert tok.decode([t for t in labels if t != -100], skip_special_tokens=True) == "xcy\n"
    assert labels[-1] == tok.eos_token_id
    with pytest.raises(ValueError, match="output"):
        strat.tokenize_prompt({"instruction": ["a"], "input": ["b"]})


def test_concurrent_ranks_generate_once(tmp_path):
    """Two processes (two ranks) asking for the same data: one writes it, both get it."""
    script = (
        "import json, sys\n"
        "from divplugin.generators.settings import resolve_generator\n"
        "from divplugin.data.cache import ensure_generated\n"
        f"name, cfg = resolve_generator(None, 'cpu-small', [('s', {SMALL!r})])\n"
        "folder, created = ensure_generated(sys.argv[1], name, cfg, workers=1)\n"
        "print(json.dumps([str(folder), created]))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "gen")], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert outs[0][0] == outs[1][0] and sorted(o[1] for o in outs) == [False, True]
    assert len(list((tmp_path / "gen").glob("markov_rewrite-*/manifest.json"))) == 1
    assert not list((tmp_path / "gen").glob(".*partial*"))


def test_mixture_strategy_alpaca_format_and_chat_template(tiny_model):
    from transformers import AutoTokenizer

    from divplugin.axolotl.mixture import MixturePromptStrategy, alpaca_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model)
    batch = {"instruction": ["Add two numbers."], "input": ["2 and 3"], "output": ["5"]}
    out = MixturePromptStrategy(tok).tokenize_prompt(batch)
    ids, labels = out["input_ids"][0], out["labels"][0]
    prompt = alpaca_prompt("Add two numbers.", "2 and 3")
    assert "### Input:\n2 and 3" in prompt and tok.decode(ids, skip_special_tokens=True) == prompt + "5"
    assert labels[: len(prompt)] == [-100] * len(prompt) and labels[len(prompt) :] == ids[len(prompt) :]
    tok.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    chat = MixturePromptStrategy(tok).tokenize_prompt(batch)
    text = tok.decode(chat["input_ids"][0])
    assert text == "<user>Add two numbers.\n\n2 and 3\n<assistant>5\n"
    kept = [t for t in chat["labels"][0] if t != -100]
    assert tok.decode(kept) == "5\n"


ROWS = {
    "instruction": ["Write a function that adds two numbers.", "Summarise the text.", "Say hi."],
    "input": ["", "The cat sat on the mat.", ""],
    "output": ["```python\ndef add(a, b):\n    return a + b\n```", "A cat sat.", "Hi!"],
}


def _bos_tokenizer(tiny_model):
    """The tiny model's tokenizer, made to put BOS in front of every text (as Llama's does)."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.bos_token_id)]
    )
    return tok


def _template_ids(tok, i: int, answer: bool) -> list[int]:
    user = {
        "role": "user",
        "content": ROWS["instruction"][i],
        **({"input": ROWS["input"][i]} if ROWS["input"][i] else {}),
    }
    chat = [user, {"role": "assistant", "content": ROWS["output"][i]}] if answer else [user]
    ids = tok.apply_chat_template(chat, tokenize=True, add_generation_prompt=not answer)
    return list(getattr(ids, "input_ids", ids))


@pytest.mark.parametrize("bos", [False, True], ids=["no-bos", "bos"])
def test_alpaca_chat_template_renders_what_the_strategy_trains_on(tiny_model, bos):
    from transformers import AutoTokenizer

    from divplugin.axolotl.mixture import MixturePromptStrategy, adds_bos, alpaca_chat_template, alpaca_prompt

    tok = _bos_tokenizer(tiny_model) if bos else AutoTokenizer.from_pretrained(tiny_model)
    assert adds_bos(tok) is bos
    trained = MixturePromptStrategy(tok).tokenize_prompt(ROWS)
    tok.chat_template = alpaca_chat_template(adds_bos(tok))
    for i in range(len(ROWS["output"])):
        ids, labels = trained["input_ids"][i], trained["labels"][i]
        prompt_len = labels.index(next(t for t in labels if t != -100))
        assert _template_ids(tok, i, answer=False) == ids[:prompt_len]
        assert _template_ids(tok, i, answer=True) == ids
        text = tok.apply_chat_template(
            [{"role": "user", "content": ROWS["instruction"][i], "input": ROWS["input"][i]}], tokenize=False
        )
        assert text == (tok.bos_token if bos else "") + alpaca_prompt(ROWS["instruction"][i], ROWS["input"][i])
    with pytest.raises(Exception, match="not tool"):
        tok.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


# -- end to end: `axolotl train` in a subprocess ------------------------------------
def _axolotl_train(
    cfg: dict, tmp_path: Path, launcher: str = "python"
) -> tuple[subprocess.CompletedProcess, list[float]]:
    """`axolotl train`, in one process (``launcher="accelerate"``: under accelerate, as a
    plain `axolotl train` runs)."""
    path = tmp_path / "train.yml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "axolotl"), "train", str(path), "--launcher", launcher],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    losses = [float(x) for x in re.findall(r"'loss': '?([0-9.]+)'?", proc.stdout + proc.stderr)]
    return proc, losses


@pytest.mark.slow
def test_axolotl_trains_on_a_mixture(tiny_model, tmp_path, mixture_sources, benchmarks_dir, monkeypatch):
    monkeypatch.setenv("DIVPLUGIN_BENCHMARKS", str(benchmarks_dir))
    paths, cache = mixture_sources
    # the alpaca template adds ~110 characters to each row: a char-level model needs room
    cfg = _base(
        tiny_model,
        tmp_path,
        max_steps=16,
        logging_steps=4,
        learning_rate=3e-3,
        sequence_len=384,
        divplugin_mixture="deepseek-table1",
        divplugin_mixture_row="oss18k-alpaca2k",
        divplugin_mixture_paths={k: paths[k] for k in ("oss", "alpaca", "cot")},
        divplugin_cache_dir=str(cache),
    )
    for key in ("divplugin_preset", "divplugin_settings"):
        cfg.pop(key)
    proc, losses = _axolotl_train(cfg, tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert len(losses) >= 3 and losses[-1] < losses[0], losses
    assert "base_type: divplugin.axolotl.mixture" in proc.stdout + proc.stderr
    # The saved tokenizer carries the Alpaca format as its chat template: rendering a
    # training row with it gives, token for token, a row that axolotl trained on.
    import datasets
    from transformers import AutoTokenizer

    from divplugin.axolotl.mixture import alpaca_chat_template

    tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tok.chat_template == alpaca_chat_template(bos=False)
    prepared = [datasets.load_from_disk(str(p.parent)) for p in (tmp_path / "prepared").rglob("dataset_info.json")]
    trained = {tuple(ids) for ds in prepared for ids in ds["input_ids"]}
    built = re.search(r"divplugin: (?:built|reusing) mixture .+? in (\S+)$", proc.stdout + proc.stderr, re.M).group(1)
    rows = [json.loads(line) for line in (Path(built) / "train.jsonl").open()][:50]
    assert len(trained) > 1000 and len(rows) == 50
    for row in rows:
        user = {"role": "user", "content": row["instruction"], "input": row["input"]}
        ids = tok.apply_chat_template([user, {"role": "assistant", "content": row["output"]}], tokenize=True)
        assert tuple(getattr(ids, "input_ids", ids)) in trained, row


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["full", "lora", "qlora"])
def test_axolotl_train_end_to_end(adapter, tiny_model, tmp_path):
    extra = {"max_steps": 24, "logging_steps": 4, "learning_rate": 3e-3}
    if adapter != "full":
        # axolotl turns on its LoRA kernels by default, and they are CUDA-only
        extra.update(
            adapter=adapter,
            lora_r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            lora_target_linear=True,
            learning_rate=1e-2,
            lora_mlp_kernel=False,
            lora_qkv_kernel=False,
            lora_o_kernel=False,
        )
    if adapter == "qlora":  # bitsandbytes' CPU 4-bit path
        extra.update(load_in_4bit=True)
    proc, losses = _axolotl_train(
        _base(tiny_model, tmp_path, **extra), tmp_path, launcher="accelerate" if adapter == "full" else "python"
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert len(losses) >= 4 and losses[-1] < losses[0], losses
    out = tmp_path / "out"
    weights = "adapter_model.safetensors" if adapter != "full" else "model.safetensors"
    assert (out / weights).is_file(), sorted(p.name for p in out.iterdir())
    heldout = out / "divplugin_data"
    manifest = json.loads((heldout / "manifest.json").read_text())
    assert manifest["config"]["num_rules"] == SMALL["num_rules"]
    test_rules = {json.loads(line)["metadata"]["rule_id"] for line in (heldout / "test.jsonl").open()}
    train = Path(manifest["config"] and (tmp_path / "gen").glob("markov_rewrite-*/train.jsonl").__next__())
    train_rules = {json.loads(line)["metadata"]["rule_id"] for line in train.open()}
    assert test_rules and not test_rules & train_rules


@pytest.mark.slow
def test_scores_while_training_leave_the_weights_as_they_were(tiny_model, tmp_path):
    """divplugin_eval only watches: the same run with and without it ends with the same bytes of
    weights (which is why a point's hash leaves it out: runner.OBSERVERS)."""
    import hashlib

    from divplugin.experiments.runner import OBSERVERS

    assert "divplugin_eval" in OBSERVERS
    digests = {}
    for scored in (False, True):
        where = tmp_path / ("scored" if scored else "plain")
        where.mkdir()
        extra = {"divplugin_eval": {"every": 2, "examples": 10, "batch_size": 4}} if scored else {}
        cfg = _base(tiny_model, where, max_steps=5, seed=0, full_determinism=True, **extra)
        cfg["divplugin_cache_dir"] = str(tmp_path / "gen")
        proc, _ = _axolotl_train(cfg, where)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert (where / "out" / "divplugin_eval.jsonl").is_file() == scored
        digests[scored] = hashlib.sha256((where / "out" / "model.safetensors").read_bytes()).hexdigest()
    assert digests[True] == digests[False]


@pytest.mark.slow
def test_a_compiled_run_trains_as_the_plain_one(tiny_model, tmp_path, monkeypatch):
    """axolotl's torch_compile (inductor's CPU code) gives the plain run's losses, step by step,
    within float tolerance: compiling changes the speed, not the training."""
    losses = {}
    for compiled in (False, True):
        where = tmp_path / ("compiled" if compiled else "plain")
        where.mkdir()
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(where / "inductor"))
        cfg = _base(tiny_model, where, max_steps=3, logging_steps=1, seed=0, full_determinism=True)
        cfg["divplugin_cache_dir"] = str(tmp_path / "gen")  # one data set for both
        if compiled:
            cfg["torch_compile"] = True
        proc, losses[compiled] = _axolotl_train(cfg, where)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert len(losses[False]) == 3, losses
    assert losses[True] == pytest.approx(losses[False], rel=2e-3), losses
    # inductor wrote kernels for the compiled run only: it did compile
    assert any((tmp_path / "compiled" / "inductor").rglob("*.py"))
    assert not any((tmp_path / "plain" / "inductor").rglob("*.py"))


@pytest.mark.slow
def test_scores_while_training_reach_the_trainer_log_and_match_lm_eval(tiny_model, tmp_path):
    """divplugin_eval: held-out exact match at steps 4 and 6 (every 4, and the last) in the
    trainer's log history and in divplugin_eval.jsonl; the last evaluation's answers are, row by
    row, the ones `divplugin eval` (lm-eval's divplugin_markov tasks) gives the saved model. The
    plugin generates 16 rows at a time, lm-eval 1 and then 16 (left-padded): batched and batch-1
    greedy answers agree."""
    settings = {"every": 4, "examples": 30, "batch_size": 16, "max_new_tokens": 24}
    cfg = _base(tiny_model, tmp_path, max_steps=6, logging_steps=2, learning_rate=3e-3, divplugin_eval=settings)
    cfg.update(save_strategy="steps", save_steps=6)  # a checkpoint keeps the trainer's state
    proc, _ = _axolotl_train(cfg, tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = tmp_path / "out"
    recs = [json.loads(line) for line in (out / "divplugin_eval.jsonl").open()]
    assert [(r["step"], r["split"], r["n"]) for r in recs] == [
        (4, "test", 30),
        (4, "test_seen", 30),
        (6, "test", 30),
        (6, "test_seen", 30),
    ]
    history = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    logged = [h for h in history if "divplugin/unseen_exact_match" in h]
    assert [h["step"] for h in logged] == [4, 6]
    assert logged[-1]["divplugin/unseen_exact_match"] == recs[2]["exact_match"]
    assert logged[-1]["divplugin/seen_exact_match"] == recs[3]["exact_match"]
    answers = [json.loads(line) for line in (out / "divplugin_eval_answers.jsonl").open()]
    assert {a["step"] for a in answers} == {6} and len(answers) == 60
    ours = {(a["split"], a["index"]): (a["answer"], float(a["exact_match"])) for a in answers}
    by_batch = {}
    for batch in (1, 16):
        lm = subprocess.run(
            [sys.executable, "-m", "divplugin", "eval", "--model", "hf", "--model_args", f"pretrained={out},dtype=float32",
             "--device", "cpu", "--tasks", "divplugin_markov_unseen,divplugin_markov_seen", "--batch_size", str(batch),
             "--gen_kwargs", "max_gen_toks=24", "--log_samples", "--output_path", str(tmp_path / f"lm{batch}"),
             "--metadata", json.dumps({"data": str(out / "divplugin_data")})],
            capture_output=True, text=True, cwd=tmp_path, timeout=900,
        )  # fmt: skip
        assert lm.returncode == 0, lm.stderr[-3000:]
        theirs = {}
        for f in (tmp_path / f"lm{batch}").rglob("samples_*.jsonl"):
            split = "test" if "unseen" in f.name else "test_seen"
            for line in f.read_text().splitlines():
                r = json.loads(line)
                theirs[(split, r["doc_id"])] = (r["filtered_resps"][0].split("\n", 1)[0].strip(), r["exact_match"])
        assert ours and all(theirs[key] == value for key, value in ours.items()), batch
        by_batch[batch] = theirs
    assert len(by_batch[1]) == 90 and by_batch[16] == by_batch[1]  # every held-out document


@pytest.mark.slow
def test_scores_while_training_under_two_ranks_come_from_one_rank(tiny_model, tmp_path):
    """divplugin_eval under DDP (two CPU ranks, gloo, launched by torchrun): rank 0 scores at
    steps 2 and 4 while rank 1 trains on and meets it at the next step's collectives; no
    deadlock, each step's rows scored and logged once, by rank 0 only, and the two ranks end
    with the same weights. (axolotl itself cannot start two ranks on a CPU: it places rank k's
    model on CUDA device k, so the callback runs here in a plain DDP loop, as the Trainer calls it.)"""
    from divplugin.data.writer import write_dataset
    from divplugin.generators import create

    data = tmp_path / "data"
    write_dataset(create("markov_rewrite", **SMALL, seed=0), data)
    out = tmp_path / "out"
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = Path(__file__).parent / "workers" / "ddp_heldout_eval.py"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(port), str(worker), str(tiny_model), str(data), str(out), "4", "2"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ranks = [json.loads((out / f"rank{k}.json").read_text()) for k in (0, 1)]
    recs = [json.loads(line) for line in (out / "divplugin_eval.jsonl").open()]
    assert [(r["step"], r["split"], r["n"]) for r in recs] == [
        (2, "test", 12),
        (2, "test_seen", 12),
        (4, "test", 12),
        (4, "test_seen", 12),
    ]
    assert len(ranks[0]["logged"]) == 2 and ranks[1]["logged"] == []
    assert ranks[0]["logged"][-1]["divplugin/unseen_exact_match"] == recs[2]["exact_match"]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP kept the ranks together through the evaluations


@pytest.mark.slow
def test_lm_eval_runs_on_the_trained_adapter_after_training(tiny_model, tmp_path):
    """divplugin_lm_eval: once `axolotl train` ends, lm-eval scores the saved LoRA adapter over
    its base with the held-out data; the results land in OUTPUT_DIR/lm_eval and the table prints."""
    lora = {
        "adapter": "lora",
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "lora_target_linear": True,
        "lora_mlp_kernel": False,
        "lora_qkv_kernel": False,
        "lora_o_kernel": False,
    }
    after = {
        "tasks": ["divplugin_markov_unseen"],
        "limit": 4,
        "batch_size": 2,
        "args": ["--gen_kwargs", "max_gen_toks=16"],
    }
    proc, _ = _axolotl_train(_base(tiny_model, tmp_path, divplugin_lm_eval=after, **lora), tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = tmp_path / "out"
    results = json.loads(next((out / "lm_eval").rglob("results_*.json")).read_text())
    assert 0.0 <= results["results"]["divplugin_markov_unseen"]["exact_match,none"] <= 1.0
    model_args = results["config"]["model_args"]
    assert model_args["pretrained"] == str(tiny_model) and model_args["peft"] == str(out)
    assert "divplugin_markov_unseen" in proc.stdout and "exact_match" in proc.stdout
