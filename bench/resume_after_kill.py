"""How long a worker killed with SIGKILL in the middle of a mass send costs (issue 12, point 7).

    .venv/bin/python bench/resume_after_kill.py                 # 10,000 recipients
    .venv/bin/python bench/resume_after_kill.py --recipients 200

A real Celery worker (the default settings users get: heartbeat 5 s, stale after 60 s) sends an
e-mail to N clients of the bench database through a real SMTP server on 127.0.0.1 (aiosmtpd, in
this process). First the send runs undisturbed: the time it takes is the baseline. Then a second
send starts, the worker is killed with SIGKILL once about a third has gone out, and a new worker
is started at once. `resume_after_kill_s` is the second send's time to completion minus the
baseline: what the kill cost (budget ≤ 60 s). Every recipient must get the message (`missing`: 0);
`duplicates` counts Message-IDs the SMTP server received twice: at most the one message in flight
when the worker died (accepted by the server, not yet recorded as sent), sent again with the same
Message-ID — plain SMTP has no way to ask whether a message arrived.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH_DB, OUT, ROOT, emit, setup_django

HERE = Path(__file__).resolve().parent
DEADLINE_S = 900


class Inbox:
    def __init__(self):
        self.ids: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes

        message = message_from_bytes(envelope.content)
        self.ids.append(message.get("Message-ID") or f"{envelope.rcpt_tos}")
        return "250 OK"


def start_worker(port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_DB,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}",
        "MAILER_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "CELERY_TASK_DEFAULT_QUEUE": "bench-resume",
    }
    handle = open(log, "ab")  # the worker writes to it until it is stopped
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool=solo", "-Q", "bench-resume", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=warning"],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
    )


def wait_until(predicate, what: str, deadline_s: float = DEADLINE_S) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline_s:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = "bench-resume"
    setup_django()

    from aiosmtpd.controller import Controller
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from clients.models import Client
    from clients.selectors import ids_digest
    from messenger import services as send_services
    from messenger.models import Delivery, MassSend

    admin = get_user_model().objects.get(username="bench-admin")
    ids = list(Client.objects.alive().exclude(email="").order_by("pk").values_list("pk", flat=True)[: args.recipients])
    import socket

    with socket.socket() as probe:  # a free port on the loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    log = Path(tempfile.mkstemp(prefix="resume-worker-", suffix=".log", dir=OUT)[1])

    def send(subject: str) -> MassSend:
        with transaction.atomic():
            return send_services.mass_send_start(actor=admin, channel="email", clients=Client.objects.filter(pk__in=ids),
                                                 digest=ids_digest(ids), subject=subject, body="Bench: resume after a kill")

    def finished(mass_send) -> bool:
        return not Delivery.objects.filter(mass_send=mass_send, status__in=["pending", "sending"]).exists()

    worker = start_worker(port, log)
    try:
        started = time.monotonic()
        first = send("Bench baseline")
        wait_until(lambda: finished(first), "the baseline send")
        baseline_s = time.monotonic() - started
        baseline_mail = len(inbox.ids)
        print(f"baseline: {first.total} recipients in {baseline_s:.1f} s", flush=True)

        inbox.ids.clear()
        started = time.monotonic()
        second = send("Bench kill")
        wait_until(lambda: len(inbox.ids) >= max(1, second.total // 3), "a third of the second send")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = time.monotonic() - started
        sent_before_kill = len(inbox.ids)
        worker = start_worker(port, log)
        wait_until(lambda: finished(second), "the send after the kill")
        total_s = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        smtp.stop()

    sent = Delivery.objects.filter(mass_send=second, status="sent").count()
    duplicates = len(inbox.ids) - len(set(inbox.ids))
    missing = second.total - len(set(inbox.ids))
    cost = total_s - baseline_s
    print(f"killed at {killed_at:.1f} s after {sent_before_kill} messages; all {sent} sent after {total_s:.1f} s; "
          f"duplicates {duplicates}, missing {missing}; the kill cost {cost:.1f} s", flush=True)
    print(f"budget, resume after kill: {cost:.1f} s (≤ 60 s): {'met' if cost <= 60 else 'MISSED'}; "
          f"missing {missing}, duplicates {duplicates}: {'none' if not duplicates else 'the message in flight at the kill'}"
          f"{'' if not duplicates else ' (SMTP accepted it, the worker died before recording it; it went again with the same Message-ID)'}",
          flush=True)
    emit({
        "recipients": second.total, "baseline_send_s": round(baseline_s, 1), "baseline_messages": baseline_mail,
        "killed_after_messages": sent_before_kill, "send_with_kill_s": round(total_s, 1),
        "resume_after_kill_s": round(cost, 1), "duplicates": duplicates, "missing": missing, "db": BENCH_DB.rsplit("/", 1)[-1],
    })


if __name__ == "__main__":
    main()
