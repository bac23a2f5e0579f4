"""Which leases a worker takes: expiry as seen on the worker's own clock, and fair shares.

Pure functions over a scan of the lease table, so the policy is tested without DynamoDB. The
rules are the KCL's: a worker takes free and expired leases up to its fair share,
``ceil(available leases / live workers)``, workers counted from the owners of live leases; when
none is free it steals one lease per round from the most loaded worker, if that one holds more
than the share (or exactly the share while the taker is two or more short of it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence

from consumers.leases import Lease, parents_done


class ExpiryTracker:
    """When each lease's counter last moved, as this worker saw it (monotonic seconds)."""

    def __init__(self, failover_time: float) -> None:
        self._failover = failover_time
        self._seen: dict[str, tuple[int, float]] = {}

    def expired(self, leases: Sequence[Lease], now: float) -> set[str]:
        """Observe a scan; the shards whose owned lease has not moved for the failover time.

        A lease first seen now counts as just moved: a worker that starts waits one failover
        time before it takes a lease from an owner it never saw renew.
        """
        expired: set[str] = set()
        for lease in leases:
            counter, since = self._seen.get(lease.shard_id, (None, now))
            if counter != lease.counter:
                since = now
            self._seen[lease.shard_id] = (lease.counter, since)
            if lease.owner is not None and now - since >= self._failover:
                expired.add(lease.shard_id)
        return expired


def available(leases: Sequence[Lease]) -> list[Lease]:
    """The leases that can be read now: not ended, and every parent ended."""
    by_shard = {lease.shard_id: lease for lease in leases}
    return [lease for lease in leases if not lease.ended and parents_done(lease, by_shard)]


def fair_share(leases: Sequence[Lease], me: str, expired: Collection[str]) -> int:
    """``ceil(available / live workers)``: live workers own an unexpired lease; I count too."""
    ready = available(leases)
    workers = {lease.owner for lease in ready if lease.owner and lease.shard_id not in expired}
    return math.ceil(len(ready) / len(workers | {me}))


def to_take(
    leases: Sequence[Lease], me: str, held: Collection[str], expired: Collection[str]
) -> list[Lease]:
    """The leases (as scanned) that worker ``me``, holding ``held``, should take this round."""
    ready = available(leases)
    target = fair_share(leases, me, expired)
    need = target - sum(1 for lease in ready if lease.shard_id in held)
    if need <= 0:
        return []
    # a lease recorded under my own id that I do not hold is a previous life's (same worker id)
    free = [
        lease
        for lease in ready
        if lease.shard_id not in held and (lease.owner in (None, me) or lease.shard_id in expired)
    ]
    if free:
        return free[:need]
    return _steal(ready, me, target, need)


def _steal(ready: Sequence[Lease], me: str, target: int, need: int) -> list[Lease]:
    """One lease of the most loaded other worker, when taking it does not just move the
    imbalance to that worker."""
    load = Counter(lease.owner for lease in ready if lease.owner not in (None, me))
    if not load:
        return []
    victim, count = load.most_common(1)[0]
    if count > target or (count == target and need >= 2):
        return [next(lease for lease in ready if lease.owner == victim)]
    return []
