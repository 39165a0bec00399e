"""Time the messenger's inbox, its list and search, and the two polls it runs every 2 s (issue 15,
point 10; DESIGN §12: `inbox_p95_ms` ≤ 150 with 100,000 conversations and 1,000,000 messages in a
constant number of queries, `chat_poll_p50_ms` ≤ 5).

    .venv/bin/python bench/inbox.py [--conversations 100000] [--messages 1000000] [--runs 40]

Needs generate_clients.py first; runs generate_messages.py itself (in this process, skipped when the
bench channels already hold that many conversations and messages). Every figure as the admin
(visibility *all*) and as bench-manager0 (Manager, own visibility: the conversations of their own
clients, about 1/22; keys with `_manager`), each with its framework floor, through Django's whole
request cycle (bench/common.py: p50 / p95 of --runs requests after a warm-up, the query count,
the SQL execution time under EXPLAIN ANALYZE, the floor ratio):

- `inbox`: the page as a link opens it, `?f=all&c=<id>`, the conversation open being the one with
  the most messages among the user's 200 most recent (a full chat page, 60 messages);
- `list`: the conversation list as the page fetches it (HX-Request), `?f=all`;
- `list_mine`: the same with `?f=mine` (the filter's radio button);
- `search`: the list searched (HX-Request) by fragments of names of clients the user sees,
  rotating over four (surnames and their first letters); `search_none`: a fragment nobody's name
  or message holds (the search's worst case: nothing stops the scan early), --runs / 8 of them
  (at least 3);
- `chat_poll` and `list_poll`: the URLs the rendered page polls every 2 s (the elements with
  `hx-trigger="every 2s"`, their `hx-get`, entities decoded), asked with HX-Request while nothing
  changed: every answer must be 204.

`inbox_queries_constant`: the page with the shortest chat open (on the same channel: an SMS or
e-mail channel costs a query for the address it may hide) makes as many queries as with the long
one; across volumes, compare `inbox_queries` of CI's tiny run with the full one's.
`poll_cost_200_managers_cpu_share` = (the manager's chat poll p50 + list poll p50) × 200 managers
/ 2 s / 1000: the share of one CPU core that answering 200 idle managers' polls takes (server side
in Django; the HTTP server's own work is not in it). The last line is one JSON object.
"""

import argparse
import json

from common import captured, emit, find_elements, framework_floor, measure_page, setup_django

POLL_TRIGGER = "every 2s"
HX = {"HX-Request": "true"}
INBOX_P95_BUDGET_MS = 150.0
CHAT_POLL_P50_BUDGET_MS = 5.0
MANAGERS = 200
POLL_INTERVAL_S = 2.0
NOBODY = "Щъюэ"  # no generated name or text holds it


def poll_urls(page: str) -> dict[str, str]:
    """The list's and the chat's poll URLs, as the page embeds them (the elements polled every 2 s)."""
    from django.urls import resolve

    found = [attrs["hx-get"] for attrs in find_elements(page, hx_trigger=POLL_TRIGGER) if attrs.get("hx-get")]
    names = [resolve(url.partition("?")[0]).view_name for url in found]
    chat = [url for url, name in zip(found, names, strict=True) if name == "messenger:chat-poll"]
    lists = [url for url, name in zip(found, names, strict=True) if name == "messenger:list"]
    assert len(chat) == 1 and len(lists) == 1, f"the inbox polls {found} (hx-trigger={POLL_TRIGGER!r}): want one list, one chat"
    return {"chat": chat[0], "list": lists[0]}


def chats_to_open(user) -> tuple[int, int]:
    """Of the user's 200 most recent conversations, the one with the most messages, and the one with
    the fewest on the same channel (a channel's kind may cost a query: the address it hides)."""
    from django.db.models import Count

    from messenger.inbox import visible_conversations
    from messenger.models import Message

    recent = list(visible_conversations(user).order_by("-last_message_at", "-id").values_list("pk", flat=True)[:200])
    if not recent:
        raise SystemExit(f"{user} sees no conversation: run bench/generate_messages.py")
    sizes = sorted(Message.objects.filter(conversation_id__in=recent).values("conversation_id", "conversation__channel_id")
                   .annotate(n=Count("id")).values_list("n", "conversation_id", "conversation__channel_id"))
    longest = sizes[-1]
    shortest = next(row for row in sizes if row[2] == longest[2])
    return longest[1], shortest[1]


def search_fragments(user) -> list[str]:
    """Four fragments of names of clients whose conversations the user sees: two surnames and
    their first four letters, from conversations a little down the list."""
    from messenger.inbox import visible_conversations

    names = list(visible_conversations(user).order_by("-last_message_at", "-id").values_list("client__name", flat=True)[50:400])
    surnames = list(dict.fromkeys(name.split()[0] for name in names if name.split()))[:2]
    return (surnames + [surname[:4] for surname in surnames])[:4] or ["a"]


def figures(http, user, suffix: str, runs: int) -> dict:
    from django.urls import reverse

    result = {f"framework_floor{suffix}_ms": framework_floor(http, runs)}
    floor_ms = result[f"framework_floor{suffix}_ms"]
    print(f"framework floor{suffix:19} p50 {floor_ms:7.1f} ms", flush=True)
    long_chat, short_chat = chats_to_open(user)
    inbox, listing = reverse("messenger:inbox"), reverse("messenger:list")
    result.update(measure_page(http, f"inbox{suffix}", inbox, {"f": "all", "c": long_chat}, runs=runs, floor_ms=floor_ms))
    _response, short = captured(http, inbox, {"f": "all", "c": short_chat})
    result[f"inbox{suffix}_queries_short_chat"] = len(short)
    result[f"inbox{suffix}_queries_constant"] = len(short) == result[f"inbox{suffix}_queries"]
    print(f"{'':34} {len(short)} queries with a {short_chat=} open: "
          f"{'the same' if result[f'inbox{suffix}_queries_constant'] else 'NOT the same'}", flush=True)
    result.update(measure_page(http, f"list{suffix}", listing, {"f": "all"}, runs=runs, floor_ms=floor_ms, headers=HX))
    result.update(measure_page(http, f"list_mine{suffix}", listing, {"f": "mine"}, runs=runs, floor_ms=floor_ms, headers=HX))
    fragments = search_fragments(user)
    print(f"{'':34} search fragments: {', '.join(fragments)}", flush=True)
    result.update(measure_page(http, f"search{suffix}", listing, lambda i: {"f": "all", "q": fragments[i % len(fragments)]},
                               runs=runs, floor_ms=floor_ms, headers=HX))
    result.update(measure_page(http, f"search_none{suffix}", listing, {"f": "all", "q": NOBODY}, runs=max(3, runs // 8),
                               floor_ms=floor_ms, headers=HX))

    response, _queries = captured(http, inbox, {"f": "all", "c": long_chat})
    assert response.status_code == 200, response.status_code
    polls = poll_urls(response.content.decode())
    result.update(measure_page(http, f"chat_poll{suffix}", polls["chat"], runs=runs, floor_ms=floor_ms, headers=HX, status=204))
    result.update(measure_page(http, f"list_poll{suffix}", polls["list"], runs=runs, floor_ms=floor_ms, headers=HX, status=204))
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    setup_django()
    from generate_messages import generate

    print("generate_messages:", json.dumps(generate(args.conversations, args.messages)), flush=True)
    from django.test import Client as HttpClient

    from crm.models import User
    from messenger.inbox import visible_conversations
    from messenger.models import Conversation, Message

    admin = User.objects.get(username="bench-admin")
    manager = User.objects.get(username="bench-manager0")
    result = {"conversations": Conversation.objects.count(), "messages": Message.objects.count(),
              "conversations_manager_sees": visible_conversations(manager).count()}
    print(f"{result['conversations']} conversations, {result['messages']} messages; "
          f"bench-manager0 sees {result['conversations_manager_sees']} conversations", flush=True)
    for user, suffix in ((admin, ""), (manager, "_manager")):
        http = HttpClient()
        http.force_login(user)
        result.update(figures(http, user, suffix, args.runs))

    polls_ms = result["chat_poll_manager_p50_ms"] + result["list_poll_manager_p50_ms"]
    result["poll_cost_200_managers_cpu_share"] = round(polls_ms * MANAGERS / POLL_INTERVAL_S / 1000, 2)
    result["inbox_queries_constant"] = result["inbox_queries_constant"] and result["inbox_manager_queries_constant"]
    print(f"polls of {MANAGERS} idle managers every {POLL_INTERVAL_S:g} s: "
          f"{result['poll_cost_200_managers_cpu_share']:.2f} of one CPU core", flush=True)
    for key, budget in (("inbox_p95_ms", INBOX_P95_BUDGET_MS), ("inbox_manager_p95_ms", INBOX_P95_BUDGET_MS),
                        ("chat_poll_p50_ms", CHAT_POLL_P50_BUDGET_MS), ("chat_poll_manager_p50_ms", CHAT_POLL_P50_BUDGET_MS)):
        print(f"budget {key} ≤ {budget:g}: {result[key]} — {'met' if result[key] <= budget else 'NOT met'}", flush=True)
    print(f"budget constant queries: {'met' if result['inbox_queries_constant'] else 'NOT met'}", flush=True)
    emit(result)


if __name__ == "__main__":
    main()
