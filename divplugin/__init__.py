"""divplugin: instruction diversity as tools for LLM fine-tuning (Zhang, Wang & Charton,
arXiv 2405.19787).

Packages, from the bottom up (each imports only those before it): ``core`` (files, seeds,
YAML, cores), ``markov`` (the algorithms), ``generators`` (the string-rewrite tasks with every
diversity knob of the paper), ``data`` (the dataset folder and its manifest), ``diversity``
(scores, selection, dedup), ``execution`` (the sandbox), ``models``, ``codeeval`` (HumanEval(+)
and MBPP(+) scoring), ``mixtures`` (code and general data at exact budgets), ``axolotl`` (the
plugin), ``lmeval`` (the tasks' code), ``experiments`` (generate -> train -> evaluate -> plot)
and ``cli``.
"""

__version__ = "0.1.0"

from divplugin.errors import ConfigError, DivpluginError, GenerationError  # noqa: E402

__all__ = ["ConfigError", "DivpluginError", "GenerationError", "__version__"]
