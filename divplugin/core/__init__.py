"""Leaf utilities that every other part of divplugin uses and that import nothing of divplugin
but :mod:`divplugin.errors`: atomic folders and locks (``fsutil``), seeds (``seeding``), YAML
and pydantic helpers (``yamlconf``), cores (``host``), cache paths (``paths``), log noise
(``logs``)."""
