"""Generate the messenger's conversations and messages for the inbox benchmark (issue 15, point 10):
100,000 conversations and 1,000,000 messages by default, with COPY.

    .venv/bin/python bench/generate_messages.py [--conversations 100000] [--messages 1000000] [--force]

After generate_clients.py (conversations belong to its clients). Three channels of their own,
"Bench inbox Telegram" (telegram), "Bench inbox WhatsApp" (webhook bridge) and "Bench inbox
e-mail" (e-mail); everything on them is the bench's, and nothing else is touched.

- **Conversations** go to clients drawn at random (a fixed seed) from the live ones, so each bench
  user's share is their share of the clients (bench-manager0, own visibility: about 1/22); a
  client has at most one conversation per channel (about 1 in 11 has two when there are enough
  clients). The assignee is the client's responsible; ~10 % have unread inbound messages (the
  last one to three messages are inbound, `unread` is their number, and the assignee has the same
  count in `Unread`); `last_message_at`, `last_message_id`, `last_text`, `last_direction` and
  `version` are those of the conversation's messages.
- **Messages**: a long-tailed number per conversation (Pareto: most chats a few messages, about
  2 % sixty or more, the longest over a thousand), together exactly --messages; each
  conversation's messages spread over its span of days, its last message between now and a year
  ago (more of them recent); ids in time order across all conversations, so `created_at` increases
  with the id as it does live. The first message is the client's; then in and out alternate
  mostly; realistic Russian (and some English) texts; outbound ones by the assignee, read /
  delivered / sent, ~0.5 % of them failed with a reason.

Ids are given explicitly (the tables locked for the load, the sequences moved past them), so a
conversation's `last_message_id` is known when it is written. Everything happens in one
transaction: a run killed at any moment leaves the database as it was. When the bench channels
already hold exactly --conversations and --messages, the load is skipped (`--force` reloads).
ANALYZE at the end either way. The last line is one JSON object.
"""

import argparse
import math
import random
import time
from datetime import UTC, datetime, timedelta

import psycopg
from common import BENCH_DB, emit, setup_django

CHANNELS = [("Bench inbox Telegram", "telegram"), ("Bench inbox WhatsApp", "webhook"), ("Bench inbox e-mail", "email")]
UNREAD_SHARE = 0.10
FAILED_SHARE = 0.005

CLIENT_TEXTS = [
    "Здравствуйте! Подскажите, пожалуйста, сколько стоит доставка до {city}?",
    "Добрый день. Есть ли в наличии модель {model}?",
    "Хочу записаться на {day}, можно после обеда?",
    "Спасибо, всё получил, всё отлично 👍",
    "Можно оплатить картой при получении?",
    "Перезвоните мне, пожалуйста, после 18:00",
    "А какие сроки? Нужно до {day}",
    "Счёт пришёл, оплатим сегодня",
    "Сколько будет стоить, если взять {n} штук?",
    "Здравствуйте, где мой заказ №{order}?",
    "Не могу дозвониться до менеджера, ответьте, пожалуйста",
    "Пришлите, пожалуйста, договор на почту",
    "Хорошо, договорились",
    "А скидка для постоянных клиентов есть?",
    "Добрый вечер! Интересует ваше предложение по {model}",
    "Ок",
    "Да, актуально",
    "Нет, пока не нужно, спасибо",
    "Можно фото с другой стороны?",
    "Адрес: {city}, ул. Ленина, д. {n}, кв. {order2}",
    "Hello, do you ship to Almaty?",
    "Can I pay by card?",
    "Подскажите, вы работаете в выходные?",
    "Заказ получил, но не хватает одной позиции.\nПроверьте, пожалуйста",
]
MANAGER_TEXTS = [
    "Здравствуйте, {name}! Да, есть в наличии, могу отложить для вас.",
    "Доставка до {city} — 350 ₽, срок 2–3 дня.",
    "Записал вас на {day}, 15:00. Напомним за час.",
    "Отправил счёт на почту, проверьте, пожалуйста.",
    "Ваш заказ №{order} передан в доставку, трек-номер пришлю сегодня.",
    "Да, оплатить можно картой при получении.",
    "Перезвоню вам в течение часа.",
    "Для постоянных клиентов скидка 5 %, оформлю в заказе.",
    "Спасибо за заказ! Если будут вопросы — пишите сюда.",
    "Уточните, пожалуйста, удобное время доставки.",
    "Договор во вложении, подпишите и пришлите скан.",
    "{name}, добрый день! Напоминаю о встрече завтра в 11:00.",
    "Цена за {n} шт. — {price} ₽ с учётом скидки.",
    "Хорошо, до связи!",
    "Sure, we ship to Almaty: 3–5 days.",
]
CITIES = ["Москвы", "Казани", "Новосибирска", "Екатеринбурга", "Самары", "Алматы", "Минска", "Санкт-Петербурга"]
MODELS = ["X200", "Pro 14", "Classic", "Mini", "Standard M", "Лайт", "Комфорт+"]
DAYS = ["понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "завтра", "послезавтра"]
FAILURES = ["Forbidden: bot was blocked by the user", "Mailbox unavailable (550)", "Gateway timeout"]
SUBJECTS = ["Заказ", "Счёт на оплату", "Вопрос по доставке", "Договор", "Re: коммерческое предложение"]


def bench_channels() -> list:
    from messenger.models import Channel

    return [Channel.objects.get_or_create(name=name, defaults={"kind": kind})[0] for name, kind in CHANNELS]


def counts(conn, channel_ids: list[int]) -> tuple[int, int]:
    conversations = conn.execute("SELECT count(*) FROM messenger_conversation WHERE channel_id = ANY(%s)", [channel_ids]).fetchone()[0]
    messages = conn.execute("SELECT count(*) FROM messenger_message WHERE channel_id = ANY(%s)", [channel_ids]).fetchone()[0]
    return conversations, messages


def check_columns(conn, table: str, columns: list[str]) -> None:
    """Every NOT NULL column without a database default must be in the COPY (a column added later
    stops the load with its name instead of failing half-way)."""
    required = [name for (name,) in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'", [table]).fetchall()]
    missing = [name for name in required if name not in columns]
    if missing:
        raise SystemExit(f"generate_messages.py: {table}.{', '.join(missing)} NOT NULL without a default: add to the COPY")


def reserve_ids(conn, table: str, n: int) -> int:
    """The first of n ids no row has and the sequence will never give (the table is locked)."""
    sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table]).fetchone()[0]
    last = conn.execute(f"SELECT last_value FROM {sequence}").fetchone()[0]
    top = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
    first = max(last, top) + 1
    conn.execute("SELECT setval(%s, %s)", [sequence, first + n - 1])
    return first


def message_counts(rnd: random.Random, conversations: int, messages: int) -> list[int]:
    """A long-tailed count per conversation (at least one each) summing to exactly `messages`."""
    if messages < conversations:
        raise SystemExit("--messages must be at least --conversations (every conversation has a message)")
    # Pareto(1.5) shifted and capped: median ~4, 90th percentile ~17, 99th ~90, the longest ~1,300 (at 100k / 1M).
    weights = [min(300.0, rnd.paretovariate(1.5) - 0.9) for _ in range(conversations)]
    spare = messages - conversations
    total = sum(weights)
    result = [1 + int(w / total * spare) for w in weights]
    short = messages - sum(result)
    for i in rnd.sample(range(conversations), short) if short <= conversations else []:
        result[i] += 1
    while sum(result) < messages:  # only when short > conversations, which int() cannot make
        result[rnd.randrange(conversations)] += 1
    return result


def fill(template: str, rnd: random.Random, name: str) -> str:
    if "{" not in template:
        return template
    return template.format(city=rnd.choice(CITIES), model=rnd.choice(MODELS), day=rnd.choice(DAYS), n=rnd.randint(2, 40),
                           order=rnd.randint(10000, 99999), order2=rnd.randint(1, 300), price=rnd.randint(5, 300) * 100,
                           name=name.split()[1] if len(name.split()) > 1 else name)


def load(conn, channels: list, conversations: int, messages: int) -> dict:
    rnd = random.Random(15)
    conn.execute("LOCK TABLE messenger_conversation, messenger_message, messenger_unread IN SHARE ROW EXCLUSIVE MODE")
    channel_ids = [c.pk for c in channels]
    # What the bench channels held before (another size): gone, with its unread rows.
    conn.execute("DELETE FROM messenger_attachment WHERE message_id IN (SELECT id FROM messenger_message WHERE channel_id = ANY(%s))", [channel_ids])
    conn.execute("DELETE FROM messenger_message WHERE channel_id = ANY(%s)", [channel_ids])
    conn.execute("DELETE FROM messenger_unread WHERE conversation_id IN (SELECT id FROM messenger_conversation WHERE channel_id = ANY(%s))", [channel_ids])
    conn.execute("DELETE FROM messenger_conversation WHERE channel_id = ANY(%s)", [channel_ids])

    # Clients: a fixed random order of the live ones; a client has at most one conversation per channel.
    conn.execute("SELECT setseed(0.15)")
    wanted = max(math.ceil(conversations / 1.1), math.ceil(conversations / len(channels)))
    people = conn.execute(
        "SELECT id, responsible_id, name, phone, email FROM clients_client WHERE deleted_at IS NULL ORDER BY random() LIMIT %s",
        [wanted]).fetchall()
    if len(people) * len(channels) < conversations:
        raise SystemExit(f"{len(people)} clients can have at most {len(people) * len(channels)} conversations on "
                         f"{len(channels)} channels: run generate_clients.py with more")
    first_channel = [rnd.randrange(len(channels)) for _ in people]

    conversation_first = reserve_ids(conn, "messenger_conversation", conversations)
    message_first = reserve_ids(conn, "messenger_message", messages)
    per_chat = message_counts(rnd, conversations, messages)
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    year_ms = 365 * 86400 * 1000
    # Each conversation's messages: its last one between now and a year ago (more of them recent),
    # the others spread over a span of hours to weeks before it. Sorted across conversations by
    # time (ties by conversation), so the ids follow the clock.
    shift = max(20, conversations.bit_length())
    keys: list[int] = []
    for j, n in enumerate(per_chat):
        end = now_ms - 60_000 - int(year_ms * rnd.random() ** 2)
        span = int(min(60 * 86400 * 1000, rnd.expovariate(1 / (2 * 86400 * 1000)) * math.sqrt(n)))
        keys.append((end << shift) | j)
        keys.extend(((end - rnd.randint(1, max(1, span))) << shift) | j for _ in range(n - 1))
    keys.sort()
    unread = [rnd.randint(1, 3) if rnd.random() < UNREAD_SHARE else 0 for _ in range(conversations)]
    unread = [min(u, n) for u, n in zip(unread, per_chat, strict=True)]
    chats = []  # (client row, channel index) per conversation
    for j in range(conversations):
        person = people[j % len(people)]
        chats.append((person, (first_channel[j % len(people)] + j // len(people)) % len(channels)))

    seen = [0] * conversations
    first_at: list = [None] * conversations  # the first message's time: the conversation's creation
    last: list = [None] * conversations  # (id, created_at, text, direction)
    direction_of = [""] * conversations
    mask = (1 << shift) - 1
    message_columns = ["id", "conversation_id", "channel_id", "direction", "text", "author_id", "external_id", "key",
                       "status", "error", "attempts", "claimed_at", "next_attempt_at", "thread_ref", "while_ignored",
                       "created_at", "sent_at"]
    check_columns(conn, "messenger_message", message_columns)
    started = time.perf_counter()
    failed = 0
    with conn.cursor().copy(f"COPY messenger_message ({', '.join(message_columns)}) FROM STDIN") as copy:
        for index, key in enumerate(keys):
            j = key & mask
            when = datetime.fromtimestamp((key >> shift) / 1000, UTC)
            person, channel_index = chats[j]
            position = seen[j]
            seen[j] += 1
            if position == 0:
                first_at[j] = when
            total = per_chat[j]
            if position == 0 or position >= total - unread[j]:
                direction = "in"
            elif direction_of[j] == "in":
                direction = "out" if rnd.random() < 0.8 else "in"
            else:
                direction = "in" if rnd.random() < 0.7 else "out"
            direction_of[j] = direction
            message_id = message_first + index
            row: tuple
            if direction == "in":
                text = fill(rnd.choice(CLIENT_TEXTS), rnd, person[2])
                row = (message_id, conversation_first + j, channel_ids[channel_index], "in", text, None, f"b{message_id}",
                       f"{rnd.getrandbits(128):032x}", "received", "", 0, None, None, "", False, when, None)
            else:
                text = fill(rnd.choice(MANAGER_TEXTS), rnd, person[2])
                status, error = "read", ""
                if rnd.random() < FAILED_SHARE:
                    status, error = "failed", rnd.choice(FAILURES)
                    failed += 1
                elif total - position <= 2:
                    status = rnd.choice(["sent", "delivered", "read"])
                row = (message_id, conversation_first + j, channel_ids[channel_index], "out", text, person[1],
                       "" if status == "failed" else f"o{message_id}", f"{rnd.getrandbits(128):032x}", status, error, 1,
                       None, None, "", False, when, None if status == "failed" else when + timedelta(seconds=1))
            copy.write_row(row)
            last[j] = (message_id, when, text, direction)
    message_s = time.perf_counter() - started

    started = time.perf_counter()
    conversation_columns = ["id", "channel_id", "client_id", "external_chat_id", "assignee_id", "status", "last_message_at",
                            "last_message_id", "version", "last_text", "last_direction", "unread", "subject", "created_at"]
    check_columns(conn, "messenger_conversation", conversation_columns)
    taken: list[set] = [set() for _ in channels]
    with conn.cursor().copy(f"COPY messenger_conversation ({', '.join(conversation_columns)}) FROM STDIN") as copy:
        for j in range(conversations):
            (client_id, responsible_id, name, phone, email), channel_index = chats[j]
            kind = channels[channel_index].kind
            address = {"telegram": str(100_000_000 + client_id), "email": email or f"client-{client_id}@example.com"}.get(
                kind, phone.lstrip("+") if phone else f"wa{client_id}")
            if address in taken[channel_index]:  # two clients with one phone: the bridge's id tells them apart
                address = f"{address}-{client_id}"
            taken[channel_index].add(address)
            message_id, when, text, direction = last[j]
            status = "closed" if rnd.random() < 0.15 and not unread[j] else "open"
            copy.write_row((conversation_first + j, channel_ids[channel_index], client_id, address, responsible_id, status,
                            when, message_id, per_chat[j] + 1, text[:160], direction, unread[j],
                            f"{rnd.choice(SUBJECTS)} №{rnd.randint(1000, 9999)}" if kind == "email" else "", first_at[j]))
    with conn.cursor().copy("COPY messenger_unread (user_id, conversation_id, count) FROM STDIN") as copy:
        for j in range(conversations):
            if unread[j] and chats[j][0][1] is not None:
                copy.write_row((chats[j][0][1], conversation_first + j, unread[j]))
    conversation_s = time.perf_counter() - started
    return {"clients_used": len(people), "unread_conversations": sum(1 for u in unread if u), "failed_messages": failed,
            "longest_chat": max(per_chat), "message_copy_s": round(message_s, 1), "conversation_copy_s": round(conversation_s, 1)}


def generate(conversations: int, messages: int, *, force: bool = False) -> dict:
    """Load (or find already there) the conversations and messages; Django is set up. The figures."""
    started = time.perf_counter()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    channels = bench_channels()
    channel_ids = [c.pk for c in channels]
    result: dict = {"conversations": conversations, "messages": messages}
    with psycopg.connect(BENCH_DB, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM clients_client LIMIT 1").fetchone():
            raise SystemExit("run bench/generate_clients.py first")
        held = counts(conn, channel_ids)
        loaded = force or held != (conversations, messages)
        if loaded:
            with conn.transaction():
                result.update(load(conn, channels, conversations, messages))
                commit_started = time.perf_counter()
            result["commit_s"] = round(time.perf_counter() - commit_started, 1)  # the deferred foreign-key checks
        else:
            print(f"the bench channels hold {held[0]} conversations and {held[1]} messages already: load skipped "
                  "(--force reloads)", flush=True)
        analyze = time.perf_counter()
        for table in ("messenger_conversation", "messenger_message", "messenger_unread"):
            conn.execute(f"ANALYZE {table}")
        result["analyze_s"] = round(time.perf_counter() - analyze, 1)
        if counts(conn, channel_ids) != (conversations, messages):
            raise SystemExit(f"generate_messages.py: the bench channels hold {counts(conn, channel_ids)}, not what was asked")
    result["loaded"] = loaded
    result["total_s"] = round(time.perf_counter() - started, 1)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--force", action="store_true", help="reload even when the bench channels hold that much")
    args = parser.parse_args()
    setup_django()
    emit(generate(args.conversations, args.messages, force=args.force))


if __name__ == "__main__":
    main()
