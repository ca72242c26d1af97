"""The on-disk dataset that ``divplugin generate``, ``mix`` and ``select`` write and that the
plugin, the lm-eval tasks and every command read: one versioned manifest (``manifest``), the
row formats (``records``), the generated-data writer (``writer``), generated data written
in shards and joined (``shards``), reading rows from any source (``rows``) and the
settings-keyed cache (``cache``)."""
