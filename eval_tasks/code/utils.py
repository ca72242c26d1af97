"""lm-eval's `!function` hooks of the divplugin code tasks; the logic lives in
`divplugin.lmeval.code` (documents and prompts in either mode, sandboxed execution of every
generation, pass@k), over `divplugin.codeeval` and `divplugin.execution`."""

from divplugin.lmeval.code import execute_all, load_code, load_code_instruct, process_results  # noqa: F401
