"""`divplugin eval`: lm-eval's own command line, with divplugin's tasks found automatically.

Every lm-eval flag and model backend passes through. When only divplugin tasks are asked
for, lm-eval's ~14,000 built-in task files are not indexed (3-7 s less per run, depending on
the lm-eval version). The ``divplugin-oracle`` model answers each document with its reference
answer: a check that a task and its scorer agree (it should score 1.0).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from divplugin.core.paths import tasks_dir

PREFIX = "divplugin_"


def _argv_value(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def register_oracle() -> None:
    from lm_eval.api.model import LM
    from lm_eval.api.registry import MODEL_REGISTRY, register_model

    if "divplugin-oracle" in MODEL_REGISTRY:
        return

    @register_model("divplugin-oracle")
    class Oracle(LM):
        """Answers every generation request with the document's reference answer."""

        def __init__(self, **kwargs):
            super().__init__()

        @classmethod
        def create_from_arg_string(cls, arg_string, additional_config=None):
            return cls()

        def generate_until(self, requests, disable_tqdm: bool = False):
            out = []
            for req in requests:
                doc = req.doc or {}
                ref = doc.get("answer", doc.get("canonical_solution"))
                if ref is None:
                    raise ValueError("divplugin-oracle needs documents with an 'answer' or 'canonical_solution'")
                out.append(str(ref))
            return out

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError("divplugin-oracle only answers generation tasks")

        loglikelihood_rolling = loglikelihood


def _summary(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="divplugin summary")
    for col in ("task", "metric", "value", "stderr", "n"):
        table.add_column(col, justify="right" if col in ("value", "stderr", "n") else "left")
    n_samples = results.get("n-samples", {})
    for task, metrics in sorted(results.get("results", {}).items()):
        for key, value in metrics.items():
            if "," not in key or key.endswith("_stderr") or "_stderr," in key or not isinstance(value, (int, float)):
                continue
            metric, _, filt = key.partition(",")
            err = metrics.get(f"{metric}_stderr,{filt}")
            n = n_samples.get(task, {}).get("effective", "")
            table.add_row(task, metric, f"{value:.4f}", f"{err:.4f}" if isinstance(err, float) else "", str(n))
    Console(stderr=False).print(table)


@contextmanager
def patched_lm_eval(argv: list[str], ours_only: bool, captured: dict):
    """lm-eval as ``divplugin eval`` runs it, restored on the way out, whatever happens:
    ``sys.argv`` set to ``lm_eval run ARGV`` (its parser reads it); ``TaskManager`` skipping
    the built-in task index when ``ours_only``; ``simple_evaluate`` copying its results into
    ``captured`` for the summary table."""
    import lm_eval
    import lm_eval.tasks

    saved = (sys.argv, lm_eval.tasks.TaskManager, lm_eval.simple_evaluate)
    base, original = saved[1], saved[2]

    class OursOnly(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args, **kwargs):
            kwargs["include_defaults"] = False
            super().__init__(*args, **kwargs)

    def capture(*args, **kwargs):
        out = original(*args, **kwargs)
        if out is not None:
            captured.update(out)
        return out

    sys.argv = ["lm_eval", "run", *argv]
    if ours_only:
        lm_eval.tasks.TaskManager = OursOnly
    lm_eval.simple_evaluate = capture
    try:
        yield
    finally:
        sys.argv, lm_eval.tasks.TaskManager, lm_eval.simple_evaluate = saved


def main(argv: list[str]) -> int:
    """Run lm-eval with `argv` (its `run` flags); returns the exit status."""
    try:
        import lm_eval  # noqa: F401
        import lm_eval.tasks  # noqa: F401
        from lm_eval._cli import HarnessCLI
    except ImportError as exc:
        print(f"divplugin eval needs lm-eval >= 0.4.9: pip install 'divplugin[eval]' ({exc})", file=sys.stderr)
        return 2
    argv = list(argv)
    include = _argv_value(argv, "--include_path")
    if include is None:
        argv += ["--include_path", str(tasks_dir())]
    tasks = (_argv_value(argv, "--tasks") or "").split(",")
    instruct = [t for t in tasks if t.strip().startswith(PREFIX) and t.strip().endswith("_instruct")]
    if instruct and any(a == "--apply_chat_template" or a.startswith("--apply_chat_template=") for a in argv):
        print(
            f"divplugin eval: {', '.join(instruct)} renders the model's chat template itself, as EvalPlus does; "
            "--apply_chat_template would wrap that prompt in the template a second time. Drop the flag.",
            file=sys.stderr,
        )
        return 2
    ours_only = include is None and all(t.strip().startswith(PREFIX) for t in tasks if t.strip())
    if _argv_value(argv, "--model") == "divplugin-oracle":
        register_oracle()  # only then: lm-eval imports its own backends when its registry is empty
    captured: dict = {}
    with patched_lm_eval(argv, ours_only, captured):
        parser = HarnessCLI()
        try:
            parser.execute(parser.parse_args())
        except SystemExit as exc:
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if captured.get("results"):
        _summary(captured)
    return 0
