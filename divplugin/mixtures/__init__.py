"""Diversity mixtures: exact-budget mixing of code and general instruction data, with dedup,
benchmark decontamination and a report (``divplugin mix SPEC --out DIR``)."""

from divplugin.mixtures.build import Built, build_mixture, mix, write_mixture
from divplugin.mixtures.spec import (
    Mixture,
    Source,
    load_mixture,
    load_mixture_dict,
    mixture_names,
)

__all__ = [
    "Built",
    "Mixture",
    "Source",
    "build_mixture",
    "load_mixture",
    "load_mixture_dict",
    "mix",
    "mixture_names",
    "write_mixture",
]
