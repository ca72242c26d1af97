from divplugin.lmeval.markov import load_markov, process_results  # noqa: F401
