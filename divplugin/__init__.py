"""divplugin: instruction diversity as tools for LLM fine-tuning.

Generators of the Markov string-rewrite tasks of Zhang, Wang & Charton (arXiv
2405.19787), with every diversity knob of the paper, plus writers, manifests and a CLI.
"""

__version__ = "0.1.0"

from divplugin.errors import ConfigError, DivpluginError, GenerationError  # noqa: E402

__all__ = ["ConfigError", "DivpluginError", "GenerationError", "__version__"]
