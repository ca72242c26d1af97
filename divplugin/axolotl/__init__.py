"""The axolotl integration: ``plugins: [divplugin.axolotl.DivPlugin]`` (see README.md here).

``DivPlugin`` needs axolotl; ``divplugin.axolotl.args`` and the prompt strategies need only
pydantic and transformers.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "DivPlugin":
        from divplugin.axolotl.plugin import DivPlugin

        return DivPlugin
    raise AttributeError(name)


__all__ = ["DivPlugin"]
