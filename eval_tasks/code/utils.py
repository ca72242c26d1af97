from divplugin.lmeval.code import execute_all, load_code, process_results  # noqa: F401
