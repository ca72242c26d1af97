"""Keeping dependencies' noise off the user's screen.

torch (2.14) logs two ``register_constant`` deprecation warnings from a dependency's enums at
import, bitsandbytes reports kernels it cannot fetch offline, and transformers draws a bar
while loading a few hundred kilobytes of weights; none of it is actionable for a divplugin
user. Errors still show.
"""

from __future__ import annotations

import logging

QUIET = ("torch.utils._pytree", "bitsandbytes", "kernels")


def quiet_dependencies() -> None:
    """Raise the log level of noisy dependency loggers to ERROR (before they are imported)."""
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
