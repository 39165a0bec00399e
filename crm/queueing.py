"""Asking a worker to drain a queue of rows (events, robot runs, inbound deliveries, automatic
messages): at most one task queued per burst when web and workers share a cache (Redis), else one
per call. A drain that runs dry deletes its key and looks once more, so a skipped kick is not lost."""

import logging

log = logging.getLogger(__name__)


def shared_cache() -> bool:
    """Whether web and workers share the cache (Redis): a key one sets the other sees. With a cache
    in each process's memory (the embedded default, the tests) every kick queues its task."""
    from django.conf import settings

    return settings.CACHES["default"]["BACKEND"].endswith("RedisCache")


def kick(key: str, task, *, again: bool = False, seconds: int = 2, quiet: bool = True) -> None:
    """Queue `task` unless one was queued under `key` within `seconds` (`again`: queue it anyway).
    `quiet`: a broker that is down is logged, not raised (the caller's sweep finds the rows)."""
    from django.core.cache import cache

    if not (again or not shared_cache() or cache.add(key, 1, timeout=seconds)):
        return
    if not quiet:
        task.delay()
        return
    try:
        task.delay()
    except Exception:
        log.exception("could not queue %s; the sweep will find its work", getattr(task, "name", task))


def drain(step, *, key: str, limit: int, seconds: float, kick_again) -> int:
    """Run batches until none is left; returns the rows done. `step()` claims and does one batch
    (SKIP LOCKED: never waiting on another worker's) and says how many it took. A short batch
    deletes the kick key and looks once more, so a kick skipped while this ran is not lost; when
    the time is up with batches still full, `kick_again()` queues the next worker."""
    import time

    from django.core.cache import cache

    deadline = time.monotonic() + seconds
    done, short = 0, False
    while True:
        n = step()
        if not n and short:
            return done
        done += n
        short = n < limit
        if short:
            cache.delete(key)
        if time.monotonic() > deadline:
            if not short:
                kick_again()
            return done


def count(key: str, *, seconds: int) -> int:
    """Add one to the counter `key` (created at 1, gone `seconds` after) and return it. On Redis one
    round trip (INCR and EXPIRE NX in a pipeline); on another cache add and incr."""
    from django.core.cache import cache

    if shared_cache():
        redis_key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(redis_key, write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline(transaction=False)
        pipe.incr(redis_key)
        pipe.expire(redis_key, seconds, nx=True)
        return int(pipe.execute()[0])
    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key)
    except ValueError:  # evicted meanwhile
        return 1
