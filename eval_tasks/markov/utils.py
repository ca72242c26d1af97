"""lm-eval's `!function` hooks of the divplugin_markov tasks; the logic lives in
`divplugin.lmeval.markov` (documents, prompts, scoring), so the tasks and the package agree."""

from divplugin.lmeval.markov import load_markov, process_results  # noqa: F401
