"""The e-mail channel (issue 15): mail read from a real dovecot over IMAP, replies sent to a real
SMTP server (aiosmtpd), on PostgreSQL. A poll stores each unseen mail once and only then marks it
read; the worker makes it a client, a deal, a conversation and a message; replies carry threading
headers, and an answer to them joins the conversation from whatever address it comes."""

import email
import email.policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.utils import timezone

from clients.models import Client
from crm import locks
from deals.models import Deal
from messenger import outbox, receive, secrets, sweep
from messenger.channels import backend_for
from messenger.channels.email import html_to_text, poll_lock_name, strip_quote
from messenger.models import Attachment, Channel, Conversation, Inbound, Message
from tests.conftest import wait_for
from tests.factories import ClientFactory
from tests.messenger.imap import imap_server, mailbox  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
OUR_ADDRESS = "sales@voronka.test"


@pytest.fixture(autouse=True)
def media(settings, tmp_path, monkeypatch):
    """Attachments in the test's own folder, for a worker process it starts too (autouse: set before it starts)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setenv("MEDIA_ROOT", str(settings.MEDIA_ROOT))


def email_channel(account, **smtp) -> Channel:
    channel = Channel(kind=Channel.Kind.EMAIL, name="Sales mail", settings={
        "imap_host": account.host, "imap_port": account.port, "imap_user": account.user, "imap_ssl": False,
        "mailbox": "INBOX", "from_email": f"Voronka Sales <{OUR_ADDRESS}>", "smtp_host": "", **smtp})
    secrets.write(channel, {"imap_password": account.password})
    channel.save()
    return channel


@pytest.fixture
def channel(mailbox):  # noqa: F811
    return email_channel(mailbox)


def client_mail(*, sender="Иван Петров <ivan@example.com>", subject="Вопрос по заказу №42",
                text="Здравствуйте!\nСколько стоит доставка в Казань?\n", message_id=None, in_reply_to=None,
                references=None, pdf_name=None, html=None) -> bytes:
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = sender
    mail["To"] = OUR_ADDRESS
    mail["Subject"] = subject
    mail["Date"] = format_datetime(timezone.now())
    mail["Message-ID"] = message_id or make_msgid(domain="example.com")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    if text is not None:
        mail.set_content(text, cte="quoted-printable")
    if html is not None:
        if text is None:
            mail.set_content(html, subtype="html", cte="base64")
        else:
            mail.add_alternative(html, subtype="html", cte="base64")
    if pdf_name:
        mail.add_attachment(PDF, maintype="application", subtype="pdf", filename=pdf_name)
    return mail.as_bytes()


def poll_and_process(channel) -> list[str]:
    """What the sweep and the worker do: poll the mailbox, process what it stored."""
    sweep.poll(channel.pk)
    return [receive.process(pk) for pk in Inbound.objects.filter(channel=channel, state=Inbound.State.NEW).values_list("pk", flat=True)]


def test_a_new_sender_becomes_a_client_a_deal_and_a_conversation(channel, mailbox):  # noqa: F811
    raw = client_mail(pdf_name="Счёт на оплату.pdf", message_id="<first@example.com>")
    assert b"Content-Transfer-Encoding: quoted-printable" in raw and "Иван".encode() not in raw  # as mail really travels
    uid = mailbox.deliver(raw)
    assert mailbox.search("UNSEEN") == [uid]

    assert sweep.poll(channel.pk) == 1
    inbound = Inbound.objects.get(channel=channel)
    assert inbound.dedupe_key == f"{mailbox.uidvalidity()}:{uid}" and inbound.state == Inbound.State.NEW
    assert "\\Seen" in mailbox.flags(uid) and mailbox.search("UNSEEN") == []

    assert receive.process(inbound.pk) == "done"
    customer = Client.objects.get()
    assert (customer.name, customer.email, customer.channel, customer.source) == ("Иван Петров", "ivan@example.com", "email", "Sales mail")
    assert Deal.objects.filter(client=customer).count() == 1
    conversation = Conversation.objects.get()
    assert (conversation.client, conversation.external_chat_id) == (customer, "ivan@example.com")
    assert conversation.subject == "Вопрос по заказу №42" and conversation.unread == 1
    message = Message.objects.get()
    assert message.direction == Message.Direction.IN and message.external_id == "<first@example.com>"
    assert message.text == "Здравствуйте!\nСколько стоит доставка в Казань?"
    attachment = Attachment.objects.get(message=message)
    assert (attachment.name, attachment.content_type, attachment.size) == ("Счёт на оплату.pdf", "application/pdf", len(PDF))
    with attachment.file.open("rb") as stored:
        assert stored.read() == PDF


def test_polling_again_or_after_a_crash_before_the_flag_gives_one_message(channel, mailbox):  # noqa: F811
    uid = mailbox.deliver(client_mail())
    assert sweep.poll(channel.pk) == 1
    assert sweep.poll(channel.pk) == 0  # it is read now: not taken again
    mailbox.unflag(uid)  # the poll died after storing the mail and before marking it read
    assert mailbox.search("UNSEEN") == [uid]
    assert sweep.poll(channel.pk) == 0  # taken again: the same Inbound
    assert "\\Seen" in mailbox.flags(uid)
    assert Inbound.objects.count() == 1
    # The same mail delivered twice (two UIDs): two deliveries, one message (its Message-ID).
    mailbox.deliver(client_mail(message_id="<twice@example.com>"))
    mailbox.deliver(client_mail(message_id="<twice@example.com>"))
    assert poll_and_process(channel) == ["done", "done", "done"]
    assert Inbound.objects.count() == 3
    assert Message.objects.count() == 2 and Client.objects.count() == 1


def test_a_mail_without_a_message_id_is_one_message_by_its_uid(channel, mailbox):  # noqa: F811
    raw = client_mail().replace(b"Message-ID:", b"X-Old-Message-ID:")
    uid = mailbox.deliver(raw)
    assert poll_and_process(channel) == ["done"]
    mailbox.unflag(uid)
    assert poll_and_process(channel) == []
    assert Message.objects.get().external_id == f"uid:{mailbox.uidvalidity()}:{uid}"


def test_a_mail_too_large_is_kept_as_its_headers_with_a_note(channel, mailbox, monkeypatch):  # noqa: F811
    from messenger.channels import email as channel_email

    monkeypatch.setattr(channel_email, "MAX_MAIL_BYTES", 200)
    mailbox.deliver(client_mail(pdf_name="big.pdf", message_id="<big@example.com>"))
    assert poll_and_process(channel) == ["done"]
    message = Message.objects.get()
    assert message.external_id == "<big@example.com>" and message.conversation.external_chat_id == "ivan@example.com"
    from django.utils.translation import gettext

    # written by the worker, in the installation's language (no reader yet)
    assert message.text == gettext("[The mail was too large to receive: %(mb)s MB.]") % {"mb": 1} and not message.attachments.exists()


def test_our_own_mail_in_the_mailbox_is_not_a_client(channel, mailbox):  # noqa: F811
    mailbox.deliver(client_mail(sender=f"Voronka <{OUR_ADDRESS.upper()}>"))
    assert poll_and_process(channel) == ["done"]
    assert not Client.objects.exists() and not Message.objects.exists()


def test_a_poll_already_running_for_the_channel_makes_another_return(channel, mailbox):  # noqa: F811
    import psycopg
    from django.db import connection

    uid = mailbox.deliver(client_mail())
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [locks.key(poll_lock_name(channel.pk))])
        assert sweep.poll(channel.pk) == 0
        assert not Inbound.objects.exists() and "\\Seen" not in mailbox.flags(uid)
        other.execute("SELECT pg_advisory_unlock(%s)", [locks.key(poll_lock_name(channel.pk))])
    assert sweep.poll(channel.pk) == 1


def test_a_mailbox_that_cannot_be_reached_or_refuses_the_login_raises(channel, mailbox):  # noqa: F811
    import imaplib

    secrets.write(channel, {"imap_password": "wrong"})
    channel.save()
    with pytest.raises(imaplib.IMAP4.error):
        sweep.poll(channel.pk)
    from tests.messenger.imap import free_port

    channel.settings["imap_port"] = free_port()  # nobody listens there
    channel.save()
    with pytest.raises(OSError):
        sweep.poll(channel.pk)


def test_a_reply_is_threaded_and_the_answer_from_another_address_joins_the_conversation(channel, mailbox, manager,  # noqa: F811
                                                                                       smtp_mailer):
    mailbox.deliver(client_mail(message_id="<q1@example.com>", references="<older@example.com>",
                                in_reply_to="<older@example.com>"))
    assert poll_and_process(channel) == ["done"]
    conversation = Conversation.objects.get()

    reply = outbox.reply(actor=manager, conversation=conversation, text="Доставка в Казань — 500 ₽.")
    assert outbox.deliver(reply.pk) == "sent"
    reply.refresh_from_db()
    sent = email.message_from_bytes(smtp_mailer.messages[0].content, policy=email.policy.default)
    assert smtp_mailer.messages[0].rcpt_tos == ["ivan@example.com"]
    assert sent["Message-ID"] == reply.external_id == f"<{reply.key}@voronka.test>"
    assert sent["In-Reply-To"] == "<q1@example.com>"
    assert sent["References"].split() == ["<older@example.com>", "<q1@example.com>"]
    assert sent["Subject"] == "Re: Вопрос по заказу №42"
    assert sent["From"].addresses[0].addr_spec == OUR_ADDRESS
    assert sent.get_body(("plain",)).get_content().strip() == "Доставка в Казань — 500 ₽."

    answer = client_mail(sender="Ivan at work <i.petrov@work.example>", subject="Re: Вопрос по заказу №42",
                         text="Спасибо, беру!\n\nOn Mon, 2 Dec 2024 at 10:00, Voronka Sales <sales@voronka.test> wrote:\n"
                              "> Доставка в Казань — 500 ₽.\n",
                         in_reply_to=reply.external_id, references=f"<q1@example.com> {reply.external_id}")
    mailbox.deliver(answer)
    assert poll_and_process(channel) == ["done"]
    assert Client.objects.count() == 1 and Conversation.objects.count() == 1  # the same person, the same chat
    newest = Message.objects.filter(direction=Message.Direction.IN).latest("id")
    assert newest.conversation == conversation and newest.text == "Спасибо, беру!"  # the quote left out
    assert newest.thread_ref == reply.external_id

    again = outbox.reply(actor=manager, conversation=conversation, text="Отлично")
    assert outbox.deliver(again.pk) == "sent"
    second = email.message_from_bytes(smtp_mailer.messages[1].content, policy=email.policy.default)
    assert smtp_mailer.messages[1].rcpt_tos == ["ivan@example.com"]  # the conversation's address
    assert second["In-Reply-To"] == newest.external_id and reply.external_id in second["References"]
    assert second["Subject"] == "Re: Вопрос по заказу №42"  # never "Re: Re:"


def test_a_reply_goes_through_the_channels_own_smtp_server_with_its_files(mailbox, manager, smtp_server, settings):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}  # must not be used
    channel = email_channel(mailbox, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_tls=False)
    mailbox.deliver(client_mail(subject=""))
    poll_and_process(channel)
    conversation = Conversation.objects.get()
    reply = outbox.reply(actor=manager, conversation=conversation, text="Договор во вложении",
                         files=[SimpleUploadedFile("договор.pdf", PDF, content_type="application/pdf")])
    assert outbox.deliver(reply.pk) == "sent"
    sent = email.message_from_bytes(smtp_server.messages[0].content, policy=email.policy.default)
    assert sent["Subject"] == "Message from Sales mail"  # no subject to answer: the default, in the author's language
    files = list(sent.iter_attachments())
    assert [(f.get_filename(), f.get_content()) for f in files] == [("договор.pdf", PDF)]


def test_a_mail_from_a_known_clients_address_is_theirs(channel, mailbox):  # noqa: F811
    anna = ClientFactory(name="Анна Смирнова", email="Anna.Smirnova@example.com")
    mailbox.deliver(client_mail(sender="Anna <anna.smirnova@EXAMPLE.com>"))
    assert poll_and_process(channel) == ["done"]
    assert Client.objects.count() == 1
    conversation = Conversation.objects.get()
    assert conversation.client == anna and conversation.external_chat_id == "anna.smirnova@example.com"


def test_an_html_only_mail_is_read_as_text_without_its_quote(channel, mailbox):  # noqa: F811
    html = ("<html><head><style>p {color: red}</style></head><body><p>Добрый&nbsp;день,<br>нужен счёт &amp; договор.</p>"
            "<div class=gmail_quote>ср, 4 дек. 2024 г. в 12:00, Voronka &lt;sales@voronka.test&gt;:"
            "<blockquote>Чем помочь?</blockquote></div></body></html>")
    mailbox.deliver(client_mail(text=None, html=html))
    assert poll_and_process(channel) == ["done"]
    assert Message.objects.get().text == "Добрый день,\nнужен счёт & договор."


def test_a_refused_recipient_fails_the_reply_with_the_reason_and_a_busy_one_is_retried(mailbox, manager, picky_smtp, settings):  # noqa: F811
    options = settings.MAILERS["default"]["OPTIONS"]
    channel = email_channel(mailbox, smtp_host=options["host"], smtp_port=options["port"])
    mailbox.deliver(client_mail(sender="refused@example.com", message_id="<r@example.com>"))
    mailbox.deliver(client_mail(sender="busy@example.com", message_id="<b@example.com>"))
    assert poll_and_process(channel) == ["done", "done"]
    refused = Conversation.objects.get(external_chat_id="refused@example.com")
    busy = Conversation.objects.get(external_chat_id="busy@example.com")

    reply = outbox.reply(actor=manager, conversation=refused, text="Hello")
    assert outbox.deliver(reply.pk) == "failed"
    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED
    assert reply.error == "The mail server refused the address: 550 5.1.1 No such mailbox here"

    later = outbox.reply(actor=manager, conversation=busy, text="Hello")
    assert outbox.deliver(later.pk) == "retry"
    later.refresh_from_db()
    assert later.status == Message.Status.QUEUED and "451" in later.error and later.next_attempt_at is not None
    assert picky_smtp.messages == []


def test_a_bounce_marks_the_reply_failed_instead_of_becoming_a_client(channel, mailbox, manager, smtp_mailer):  # noqa: F811
    mailbox.deliver(client_mail(message_id="<q@example.com>"))
    poll_and_process(channel)
    reply = outbox.reply(actor=manager, conversation=Conversation.objects.get(), text="Hi")
    outbox.deliver(reply.pk)
    reply.refresh_from_db()
    sent = smtp_mailer.messages[0].content.decode()
    report = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: sales@voronka.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; ivan@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        f"--B\r\nContent-Type: message/rfc822\r\n\r\n{sent}\r\n--B--\r\n"
    )
    mailbox.deliver(report.encode())
    assert poll_and_process(channel) == ["done"]
    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED and reply.error == "550 5.1.1 User unknown"
    assert Client.objects.count() == 1 and Message.objects.count() == 2


@pytest.mark.parametrize("text, expected", [
    ("Yes, thanks.\n\nOn Tue, 3 Dec 2024 at 09:12, Voronka <sales@voronka.test> wrote:\n> Shall we?\n> Bye\n", "Yes, thanks."),
    ("Да\n\nвт, 3 дек. 2024 г. в 09:12, Voronka Sales <\nsales@voronka.test>:\n\n> Подходит?\n", "Да"),
    ("Да, подходит\n\n03.12.2024, 09:12, \"Voronka\" <sales@voronka.test>:\n> Подходит?", "Да, подходит"),
    ("> Price?\n500\n> Delivery?\nTomorrow\n", "> Price?\n500\n> Delivery?\nTomorrow"),  # answers between quotes stay
    ("> only a quote\n> nothing else\n", "> only a quote\n> nothing else"),  # all quote: kept whole
    ("Sure\n\n-----Original Message-----\nFrom: Voronka\nSent: Monday\n\nShall we?", "Sure"),
    ("Sure\n\n________________________________\nFrom: Voronka\nSent: Monday\nShall we?", "Sure"),
    ("It wrote:\nplain text, no quote", "It wrote:\nplain text, no quote"),
])
def test_the_quoted_reply_at_the_end_is_left_out(text, expected):
    assert strip_quote(text) == expected


def test_html_becomes_rough_text():
    assert html_to_text("<p>A &lt;b&gt;</p><script>x()</script><ul><li>one</li><li>two</li></ul>") == "A <b>\n\none\ntwo"


def test_the_real_worker_polls_and_processes(mailbox, celery_worker):  # noqa: F811
    from messenger.tasks import channel_poll

    channel = email_channel(mailbox)
    uid = mailbox.deliver(client_mail(sender="Ольга <olga@example.com>", pdf_name="прайс.pdf"))
    channel_poll.delay(channel.pk)  # the worker polls; each stored mail's processing is queued when its row commits
    assert wait_for(lambda: Inbound.objects.filter(channel=channel, state=Inbound.State.DONE).exists(), timeout=30), \
        open(celery_worker["process"].log_path).read()
    assert "\\Seen" in mailbox.flags(uid)
    message = Message.objects.select_related("conversation__client").get()
    assert message.conversation.client.name == "Ольга" and message.conversation.external_chat_id == "olga@example.com"
    attachment = message.attachments.get()
    assert attachment.name == "прайс.pdf"
    with attachment.file.open("rb") as stored:  # written by the worker, into this test's folder
        assert stored.read() == PDF
    assert backend_for(channel).poll() == 0
