"""Markup kept by the values it was drawn from: the board's columns of cards and the clients
table's rows, drawn again only when something they show changed.

A board is drawn again and again while nothing on most of it changes: every open board reloads its
columns when any deal of its line moves, and a manager opens it many times a day. Formatting and
drawing its 120 cards was a fifth of the page. Each column's markup is kept under a key made of
every value it shows (the row values read by the page's own statement, which it still runs every
time) and of everything else that decides how they read (the reader's language and time zone, the
fields hidden from them, what they may do, the address prefix). A key is the whole input of the
drawing, so kept markup cannot be stale: a changed value is another key, and the old one is
forgotten when the least recently used entries make room. Nothing is ever invalidated.

Kept per process (a web worker's memory, bounded by `size` entries), not in the shared cache: a
hit costs a dict lookup, where Redis would cost a round trip per page.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from django.core.signals import setting_changed
from django.urls import get_script_prefix, get_urlconf
from django.utils import timezone
from django.utils.translation import get_language

_every: list["Drawn"] = []


class Drawn:
    """A bounded least-recently-used store of drawn markup (str), safe across threads."""

    def __init__(self, size: int):
        self.size = size
        self._kept: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        _every.append(self)

    def get(self, key: Hashable, draw: Callable[[], str]) -> str:
        """The markup kept under `key`, or draw() kept under it."""
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        made = draw()
        with self._lock:
            self._kept[key] = made
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return made

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._kept)


def reader() -> tuple:
    """What decides how values read besides the values: the active language (words, labels,
    number and date formats), the time zone (dates), the URL conf and script prefix (addresses)."""
    return get_language(), str(timezone.get_current_timezone()), get_urlconf(), get_script_prefix()


def _forget(**_kwargs) -> None:
    # A test that changes a setting (a format, a URL conf) must not be answered what was drawn before.
    for drawn in _every:
        drawn.clear()


setting_changed.connect(_forget, dispatch_uid="crm.drawn")
