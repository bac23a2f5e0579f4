"""The streaming recommender: candidates from online features, blended, filtered, backfilled.

The scoring is pure (``rank`` and its parts) and tested without I/O; ``Recommender`` only reads
the rows it needs (the user, the global row, the user's newest recent items) and hands them over.

Candidates come from four sources, each scored, then scaled to [0, 1] by its best candidate and
blended with the weights of ``Blend``:

- **co-visitation**: for each of the user's ``SOURCE_ITEMS`` newest recent items (rank 0 is the
  newest), the items co-visited with it, ``count / (1 + rank)``; reason ``seen with <item>``;
- **neighbours** of the same recent items in the promoted batch model (item-item similarity),
  ``similarity / (1 + rank)``; reason ``similar to <item>``;
- **content neighbours** of the recent items that are cold (no co-visits yet, unknown to the
  batch model), from the promoted content model (TF-IDF of title and genres); reason
  ``like <item>``;
- **trending**: the global row's trending candidates whose score now is above 1 (more
  interactions in the last hour than usual); reason ``trending``;
- **content**: popular items of the user's strongest genres (decayed genre affinity, the item
  genres from the catalog), which is what a user with few events gets; reason ``genre <name>``.

Items the user has seen (or has in the recent list) are left out unless the filters say
otherwise, and so is anything the filters exclude. When fewer than ``k`` remain, the global
popularity list fills the rest (reason ``popular``). Scores compare within one list only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from feature_store.definitions import lookup
from feature_store.features import ItemFeatures, Popular, UserFeatures
from feature_store.online import FeatureStore
from feature_store.transforms import TRENDING_STEP_MS, trending_score
from models.batching import Batcher
from models.catalog import ItemCatalog
from models.filters import Filters
from models.genre_index import genre_index
from models.item_rows import ItemRows
from models.numbered import ITEM_NUMBERS, Entries, Floats, Numbers, numbered, with_numbered_covis

POPULAR_REASON = "popular"
TRENDING_REASON = "trending"
SOURCE_ITEMS = 20  # the user's newest recent items whose neighbours are candidates
CONTENT_GENRES = 3  # the user's strongest genres that content candidates come from
POPULAR_MAX_AGE_SECONDS = 5.0  # the global row is re-read at most this often
# what scoring reads of the rows (projections: a BatchGetItem of 20 whole item rows moves every
# tile; moto's time, and DynamoDB's read units, grow with the bytes)
USER_ATTRIBUTES = ("recent", "seen", "genres")
ITEM_ATTRIBUTES = ("covis",)

_AFFINITY = lookup(["user.genre_affinity"])[0]
NO_FILTERS = Filters()
EMPTY_CATALOG = ItemCatalog()

# item id -> its neighbours in a batch model, (item id, similarity), best first
Neighbours = Mapping[str, Sequence[tuple[str, float]]]


@dataclass(frozen=True)
class Recommendation:
    """One recommended item, its score and why it was chosen."""

    item_id: str
    score: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """As the API and the cache carry it (``dataclasses.asdict`` copies deeply: 25x slower)."""
        return {"item_id": self.item_id, "score": self.score, "reason": self.reason}


@dataclass(frozen=True)
class Blend:
    """Weights of the candidate sources (each source's scores are first scaled to [0, 1])."""

    covisit: float = 1.0
    neighbours: float = 0.5
    trending: float = 0.1
    content: float = 0.1


def recency_weight(rank: int) -> float:
    """Weight of a source item by its recency rank (0 = the newest recent item)."""
    return 1.0 / (1 + rank)


def excluded_items(user: UserFeatures | None) -> frozenset[str]:
    """Items never to recommend to ``user`` by default: everything seen and everything recent."""
    if user is None:
        return frozenset()
    return frozenset(user.seen) | {r.item_id for r in user.recent}


class _Source:
    """A small source's raw scores (trending, content) and, per candidate, the reason of its
    best contribution (the first one, on a tie)."""

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self._best: dict[str, tuple[float, str]] = {}
        self._terms: tuple[Numbers, Floats] | None = None

    def add(self, item_id: str, score: float, reason: str) -> None:
        self.scores[item_id] = self.scores.get(item_id, 0.0) + score
        if item_id not in self._best or score > self._best[item_id][0]:
            self._best[item_id] = (score, reason)
        self._terms = None

    def terms(self) -> tuple[Numbers, Floats]:
        """The candidates' numbers and their scores (numbered once: the trending source is
        kept for a step and asked by every request)."""
        if self._terms is None:
            scores = self.scores
            numbers = ITEM_NUMBERS.numbers(scores)
            self._terms = (numbers, np.fromiter(scores.values(), np.float64, len(scores)))
        return self._terms

    def reasons(self, chosen: Sequence[int]) -> list[str]:
        """The reason of each chosen candidate's best contribution."""
        best = [self._best.get(ITEM_NUMBERS.id_of(number)) for number in chosen]
        return ["" if found is None else found[1] for found in best]


class _Lists:
    """A source made of the recent items' neighbour lists, each weighed by its item's recency:
    the miss path's bulk (``models.numbered``). Reasons are found only for the candidates
    chosen, with the same answer as keeping each one's best as the terms come."""

    def __init__(self) -> None:
        self._lists: list[tuple[float, str, Entries]] = []
        self._terms: tuple[Numbers, Floats, npt.NDArray[np.intp]] | None = None

    def add_list(self, entries: Entries, weight: float, reason: str) -> None:
        """Every candidate of ``entries`` with a positive strength, scored ``strength * weight``."""
        self._lists.append((weight, reason, entries))
        self._terms = None

    def terms(self) -> tuple[Numbers, Floats]:
        """Every list's candidates' numbers and their ``strength * weight``, list after list."""
        numbers, terms, _ = self._all_terms()
        return numbers, terms

    def _all_terms(self) -> tuple[Numbers, Floats, npt.NDArray[np.intp]]:
        if self._terms is None:
            if not self._lists:
                return _NO_NUMBERS, _NO_FLOATS, np.zeros(0, np.intp)
            parts = [numbered(entries) for _, _, entries in self._lists]
            lengths = [len(numbers) for numbers, _ in parts]
            weights = np.repeat([weight for weight, _, _ in self._lists], lengths)
            strengths = np.concatenate([strengths for _, strengths in parts])
            numbers = np.concatenate([numbers for numbers, _ in parts])
            lists = np.repeat(np.arange(len(parts)), lengths)
            self._terms = (numbers, strengths * weights, lists)
        return self._terms

    def reasons(self, chosen: Sequence[int]) -> list[str]:
        """The reason of each chosen candidate's best term (the first one, on a tie)."""
        numbers, terms, lists = self._all_terms()
        _, found = _positions(np.sort(np.asarray(chosen, dtype=np.int64)), numbers)
        at = np.flatnonzero(found)  # the chosen ones' terms, in list order
        best: dict[int, tuple[float, int]] = {}
        for number, term, list_index in zip(
            numbers[at].tolist(), terms[at].tolist(), lists[at].tolist(), strict=True
        ):
            if number not in best or term > best[number][0]:
                best[number] = (term, list_index)
        return [self._lists[best[n][1]][1] if n in best else "" for n in chosen]


_NO_NUMBERS: Numbers = np.zeros(0, np.int64)
_NO_FLOATS: Floats = np.zeros(0, np.float64)


def _neighbour_source(user: UserFeatures, lists: Sequence[Entries | None], reason: str) -> _Lists:
    source = _Lists()
    for rank, (recent, neighbours) in enumerate(zip(user.recent, lists, strict=False)):
        if neighbours:
            source.add_list(neighbours, recency_weight(rank), f"{reason} {recent.item_id}")
    return source


class _TrendingSources:
    """The trending candidates of a global row at ``now_ms``: the same for every request of one
    ``TRENDING_STEP_MS``, so the last one made is kept (of which row, at which step) and a
    hundred candidates' windows are counted once a step, not once a request."""

    def __init__(self) -> None:
        self._last: tuple[Popular, int, _Source] | None = None  # a source is never changed

    def __call__(self, popular: Popular, now_ms: int) -> _Source:
        step = now_ms // TRENDING_STEP_MS
        last = self._last
        if last is not None and last[0] is popular and last[1] == step:
            return last[2]
        source = _Source()
        for candidate in popular.trending:
            score = trending_score(candidate.recent, candidate.week, now_ms)
            if score > 1.0:
                source.add(candidate.item_id, score - 1.0, TRENDING_REASON)
        self._last = (popular, step, source)
        return source


_trending_source = _TrendingSources()


def _content_source(
    user: UserFeatures, popular: Popular, catalog: ItemCatalog, now_ms: int
) -> _Source:
    source = _Source()
    affinity = _AFFINITY.value(user, now_ms) or {}
    strongest = sorted(affinity.items(), key=lambda kv: (-kv[1], kv[0]))[:CONTENT_GENRES]
    if not strongest or not popular.items or len(catalog) == 0:
        return source
    top_total = popular.items[0][1] or 1
    for item_id, total in popular.items:
        genres = catalog.genres_of(item_id)
        for genre, strength in strongest:
            if genre in genres and strength > 0:
                source.add(item_id, strength * total / top_total, f"genre {genre}")
    return source


def _cold(item_id: str, features: ItemFeatures | None, neighbours: Neighbours | None) -> bool:
    """An item nothing but its content describes: no co-visits, no batch-model neighbours."""
    return (features is None or not features.covis) and not (neighbours and neighbours.get(item_id))


def rank(
    user: UserFeatures | None,
    items: Sequence[ItemFeatures | None],
    popular: Popular,
    k: int,
    *,
    filters: Filters = NO_FILTERS,
    catalog: ItemCatalog = EMPTY_CATALOG,
    neighbours: Neighbours | None = None,
    cold_neighbours: Neighbours | None = None,
    now_ms: int = 0,
    blend: Blend = Blend(),
) -> list[Recommendation]:
    """The ``k`` recommendations for ``user`` (``None``: a user never seen), best first.

    ``items`` are the features of ``user.recent``'s first items, aligned with it (``None`` for an
    item the store does not know); ``neighbours`` the batch model's lists for those items.
    Ties break by item id.
    """
    excluded: Collection[str] = excluded_items(user) if filters.exclude_seen else ()
    sources: list[tuple[float, _Source | _Lists]] = [
        (blend.trending, _trending_source(popular, now_ms))
    ]
    if user is not None:
        covis = [None if f is None else f.covis for f in items]
        sources.append((blend.covisit, _neighbour_source(user, covis, "seen with")))
        recent = user.recent[: len(items) or SOURCE_ITEMS]
        if neighbours:
            lists = [neighbours.get(r.item_id) for r in recent]
            sources.append((blend.neighbours, _neighbour_source(user, lists, "similar to")))
        if cold_neighbours:
            padded = [*items, *[None] * (len(recent) - len(items))]
            cold = [
                cold_neighbours.get(r.item_id) if _cold(r.item_id, f, neighbours) else None
                for r, f in zip(recent, padded, strict=False)
            ]
            sources.append((blend.neighbours, _neighbour_source(user, cold, "like")))
        sources.append((blend.content, _content_source(user, popular, catalog, now_ms)))

    blended = _blend(sources, excluded, filters, catalog)
    best = _best_k(blended, k)
    reasons: dict[int, str] = {}
    for index, source in enumerate(blended.sources):  # each source asked once, for its own
        mine = [number for _, _, number, strongest in best if strongest == index]
        reasons.update(zip(mine, source.reasons(mine), strict=True) if mine else ())
    chosen = [Recommendation(i, round(s, 6), reasons[n]) for i, s, n, _ in best]
    return backfill(chosen, popular, k, excluded, filters, catalog)


@dataclass(frozen=True)
class _Blended:
    """The blended candidates: numbers ascending, scores, and the source of each one's reason
    (its strongest contribution, the first source on a tie)."""

    numbers: Numbers
    scores: Floats
    strongest: npt.NDArray[np.intp]
    sources: Sequence[_Source | _Lists]


def _blend(
    sources: Sequence[tuple[float, _Source | _Lists]],
    excluded: Collection[str],
    filters: Filters,
    catalog: ItemCatalog,
) -> _Blended:
    """Each source's candidates, but the ``excluded`` ones and those the filters refuse, scaled
    by the best kept one's score, weighed and summed in the sources' order.

    Every source's terms are summed per candidate by ``bincount``, which adds them in their
    order, as a loop would, to the same floats; the candidates of every source are numbered
    once (``union``), and what is left out is marked once for all of them.
    """
    parts = [(weight, source, *source.terms()) for weight, source in sources if weight > 0]
    if not parts:
        return _NO_BLEND
    union, where = _distinct(np.concatenate([n for _, _, n, _ in parts]))
    size = len(union)
    allowed = np.ones(size, bool)
    # numbered after the sources: a candidate new to the process has one now
    for ids in (excluded, filters.exclude_items):
        if ids:
            at, found = _positions(union, ITEM_NUMBERS.known(ids))
            allowed[at[found]] = False
    if filters.include_genres or filters.exclude_genres:
        index = genre_index(catalog)
        allowed &= index.allows(union, filters.include_genres, filters.exclude_genres)
    blended = np.zeros(size)
    best = np.full(size, -np.inf)
    strongest = np.zeros(size, np.intp)
    scored = np.zeros(size, bool)
    start = 0
    for index, (weight, _, numbers, terms) in enumerate(parts):
        at = where[start : start + len(numbers)]
        start += len(numbers)
        kept = np.zeros(size, bool)
        kept[at] = True
        kept &= allowed
        if not kept.any():
            continue
        sums = np.bincount(at, weights=terms, minlength=size)
        top = sums[kept].max()
        if top <= 0:
            continue
        contributions = weight * (sums / top)
        blended[kept] += contributions[kept]
        stronger = kept & (contributions > best)
        best[stronger] = contributions[stronger]
        strongest[stronger] = index
        scored |= kept
    chosen = np.flatnonzero(scored)
    sources_ = [source for _, source, _, _ in parts]
    return _Blended(union[chosen], blended[chosen], strongest[chosen], sources_)


def _positions(
    ascending: Numbers, values: Numbers
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Where each of ``values`` is in ``ascending``, and whether it is there at all (where it
    is not, its position means nothing)."""
    if not len(ascending):
        return np.zeros(len(values), np.intp), np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(ascending, values), len(ascending) - 1)
    return at, ascending[at] == values


# below this many item numbers, candidates are told apart by marking an array of every number
# (3x faster than np.unique's sort at 10,000 items); above, by sorting
DENSE_NUMBERS = 1 << 17


def _distinct(numbers: Numbers) -> tuple[Numbers, npt.NDArray[np.intp]]:
    """The distinct ``numbers``, ascending, and where each of ``numbers`` is among them."""
    size = len(ITEM_NUMBERS)
    if size > DENSE_NUMBERS:
        return np.unique(numbers, return_inverse=True)
    present = np.zeros(size, bool)
    present[numbers] = True
    distinct = np.flatnonzero(present)
    position = np.empty(size, np.intp)
    position[distinct] = np.arange(len(distinct))
    return distinct, position[numbers]


_NO_BLEND = _Blended(_NO_NUMBERS, _NO_FLOATS, np.zeros(0, np.intp), ())


def _best_k(blended: _Blended, k: int) -> list[tuple[str, float, int, int]]:
    """The ``k`` best candidates, ties by item id: ``(item id, score, number, the index of the
    source of its reason)``. Only those scoring at least the ``k``-th best score are sorted
    (most of a thousand are not)."""
    scores = blended.scores
    if len(scores) > k:
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
        chosen = np.flatnonzero(scores >= threshold)
    else:
        chosen = np.arange(len(scores))
    best = [
        (ITEM_NUMBERS.id_of(number), score, number, source)
        for number, score, source in zip(
            blended.numbers[chosen].tolist(),
            scores[chosen].tolist(),
            blended.strongest[chosen].tolist(),
            strict=True,
        )
    ]
    return sorted(best, key=lambda found: (-found[1], found[0]))[:k]


def backfill(
    recommendations: Sequence[Recommendation],
    popular: Popular,
    k: int,
    excluded: Collection[str] = (),
    filters: Filters = NO_FILTERS,
    catalog: ItemCatalog = EMPTY_CATALOG,
) -> list[Recommendation]:
    """The first ``k`` of ``recommendations``, topped up to ``k`` with popular items.

    Popular items already in the list, in ``excluded`` or refused by ``filters`` are skipped;
    the result has no duplicates and is shorter than ``k`` only when the popularity list runs
    out. A popular item's score is its interaction total.
    """
    result = list(recommendations[:k])
    taken = {r.item_id for r in result}
    for item_id, total in popular.items:
        if len(result) >= k:
            break
        if item_id in taken or item_id in excluded or not filters.allows(item_id, catalog):
            continue
        result.append(Recommendation(item_id, float(total), POPULAR_REASON))
        taken.add(item_id)
    return result


async def _numbered_items(
    store: FeatureStore, item_ids: Sequence[str]
) -> list[ItemFeatures | None]:
    """Item rows as scoring reads them, their co-visits numbered (``models.numbered``)."""
    items = await store.items(item_ids, ITEM_ATTRIBUTES)
    return [None if f is None else with_numbered_covis(f) for f in items]


@dataclass
class _PopularCopy:
    popular: Popular | None = None
    read_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Recommender:
    """Recommendations read from the online store: at most three reads, two round trips.

    The global row is shared by every request and re-read at most every
    ``POPULAR_MAX_AGE_SECONDS``; the last copy read is also what ``fallback`` serves when the
    store is too slow or down. Item rows are read through ``item_rows`` (``models.item_rows``):
    kept ``item_rows_max_age_seconds`` (0, the default, reads them every time). Concurrent
    requests' user rows and item rows are read together (``models.batching``), at most
    ``reads_in_flight`` reads of each kind at a time. ``catalog`` and ``neighbours`` may be
    swapped while serving (``use``, ``use_content``): a request sees the old pair or the new one.
    """

    def __init__(
        self,
        store: FeatureStore,
        catalog: ItemCatalog | None = None,
        neighbours: Neighbours | None = None,
        blend: Blend = Blend(),
        clock: Callable[[], float] = time.monotonic,
        item_rows_max_age_seconds: float = 0.0,
        item_rows_entries: int = 10_000,
        reads_in_flight: int = 2,
    ) -> None:
        self._store = store
        # concurrent requests' reads go together: at most reads_in_flight of each kind out
        self.user_reads: Batcher[str, UserFeatures] = Batcher(
            lambda ids: store.users(ids, USER_ATTRIBUTES), max_in_flight=reads_in_flight
        )
        self.item_reads: Batcher[str, ItemFeatures] = Batcher(
            lambda ids: _numbered_items(store, ids), max_in_flight=reads_in_flight
        )
        self.item_rows = ItemRows(
            self.item_reads.get_many, item_rows_max_age_seconds, item_rows_entries, clock
        )
        self._model = (catalog or ItemCatalog(), neighbours)
        self._cold: Neighbours | None = None
        self._versions = {"batch": "", "content": ""}
        self._blend = blend
        self._clock = clock
        self._popular = _PopularCopy()

    def use(self, neighbours: Neighbours | None, version: str = "") -> None:
        """Serve these neighbours (of batch model ``version``) from now on."""
        self._model = (self._model[0], neighbours)
        self._versions["batch"] = version

    def use_content(
        self,
        neighbours: Neighbours | None,
        version: str = "",
        catalog: ItemCatalog | None = None,
    ) -> None:
        """Serve these content neighbours (of model ``version``) for cold recent items and, when
        given and not empty, the content model's ``catalog`` for genre filters and candidates."""
        if catalog:
            self._model = (catalog, self._model[1])
        self._cold = neighbours
        self._versions["content"] = version

    @property
    def model_version(self) -> str:
        """The model versions serving, joined ("" for none): part of the cache key."""
        return "+".join(v for v in self._versions.values() if v)

    async def popular(self) -> Popular:
        """The global row, read again when the copy is older than ``POPULAR_MAX_AGE_SECONDS``."""
        copy = self._popular
        if copy.popular is not None and self._clock() - copy.read_at < POPULAR_MAX_AGE_SECONDS:
            return copy.popular
        async with copy.lock:  # one read refreshes it for every waiting request
            if copy.popular is None or self._clock() - copy.read_at >= POPULAR_MAX_AGE_SECONDS:
                copy.popular = await self._store.popular()
                copy.read_at = self._clock()
            return copy.popular

    async def recommend(
        self,
        user_id: str,
        k: int = 10,
        filters: Filters = NO_FILTERS,
        now_ms: int | None = None,
    ) -> list[Recommendation]:
        """Up to ``k`` recommendations for ``user_id``, best first, at ``now_ms`` (default now)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        catalog, neighbours = self._model
        user, popular = await asyncio.gather(self.user_reads.get(user_id), self.popular())
        recent_ids = [r.item_id for r in user.recent[:SOURCE_ITEMS]] if user else []
        items = await self.item_rows.get(recent_ids) if recent_ids else []
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return rank(
            user,
            items,
            popular,
            k,
            filters=filters,
            catalog=catalog,
            neighbours=neighbours,
            cold_neighbours=self._cold,
            now_ms=now,
            blend=self._blend,
        )

    def last_popular(self) -> Popular:
        """The last global row read (empty before the first read), without touching the store."""
        return self._popular.popular or Popular()

    def fallback(self, k: int, filters: Filters = NO_FILTERS) -> list[Recommendation]:
        """The last global row read, as popular items, without touching the store (may be
        empty before the first read); seen items cannot be left out without the user's row."""
        catalog, _ = self._model
        return backfill([], self.last_popular(), k, (), filters, catalog)
