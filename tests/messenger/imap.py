"""A private IMAP server for the e-mail channel's tests: Debian's dovecot (scripts/test installs
`dovecot-imapd`), started once per test process with a configuration of its own in a temporary
folder (its own base_dir and state_dir, plaintext login on 127.0.0.1, maildirs, a passwd-file per
user), and stopped at the end. The system's dovecot, if any, is never touched.

    imap_server   the running server, signed in as its first user (session)
    mailbox       a new user with an empty INBOX for one test

Both are accounts: host, port, user, password, and deliver(raw) (APPEND to INBOX, as a mail
server delivers), flags(uid), search(criteria), unflag(uid, flag).

Import both fixtures into a test module: `from tests.messenger.imap import imap_server, mailbox`.
"""

import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT = 20.0


@dataclass
class ImapAccount:
    host: str
    port: int
    user: str
    password: str

    def connect(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def _run(self, action, mailbox: str = "INBOX"):
        imap = self.connect()
        try:
            if mailbox:
                _ok(imap.select(mailbox))
            return action(imap)
        finally:
            imap.logout()

    def deliver(self, raw: bytes, flags: str = "") -> int:
        """Put a mail in INBOX as a mail server would (unseen unless `flags` say so); its UID."""
        def append(imap):
            typ, data = imap.append("INBOX", f"({flags})" if flags else None, None, raw)
            _ok((typ, data))
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            return int(found.group(1))

        return self._run(append, mailbox="")

    def flags(self, uid: int) -> set[str]:
        """The flags of the mail with this UID, e.g. {"\\Seen"}."""
        def fetch(imap):
            data = _ok(imap.uid("FETCH", str(uid), "(FLAGS)"))
            found = re.search(rb"FLAGS \(([^)]*)\)", data[0] or b"")
            if found is None:
                raise LookupError(f"no mail with UID {uid}")
            return set(found.group(1).decode().split())

        return self._run(fetch)

    def search(self, criteria: str = "ALL") -> list[int]:
        """UIDs of the INBOX's mails matching `criteria` (UNSEEN, SEEN, ALL…)."""
        return self._run(lambda imap: [int(uid) for uid in _ok(imap.uid("SEARCH", criteria))[0].split()])

    def unflag(self, uid: int, flag: str = "\\Seen") -> None:
        """Take a flag off (a poll that crashed before it marked the mail read)."""
        self._run(lambda imap: _ok(imap.uid("STORE", str(uid), "-FLAGS", f"({flag})")))

    def uidvalidity(self) -> int:
        return self._run(lambda imap: int(_ok(imap.status("INBOX", "(UIDVALIDITY)"))[0].split()[-1].strip(b")")), mailbox="")


def _ok(response):
    typ, data = response
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{typ}: {data}")
    return data


class Dovecot(ImapAccount):
    """The running server (as its first user); account() adds another user."""

    def __init__(self, root: Path, port: int, mail_owner: str):
        super().__init__(host="127.0.0.1", port=port, user="first", password="first-pass")
        self.root = root
        self.users = root / "users"  # a passwd-file per user: a new user is a new file, read at its first login
        self.mail_owner = pwd.getpwnam(mail_owner)
        self.process: subprocess.Popen | None = None
        self.users.mkdir()
        self._add(self.user, self.password)

    def _add(self, user: str, password: str) -> None:
        owner = self.mail_owner
        (self.users / user).write_text(f"{user}:{{PLAIN}}{password}:{owner.pw_uid}:{owner.pw_gid}::{self.root / 'mail' / user}::\n")

    def account(self, user: str | None = None) -> ImapAccount:
        user = user or f"u{uuid.uuid4().hex[:12]}"
        password = uuid.uuid4().hex
        self._add(user, password)
        return ImapAccount(self.host, self.port, user, password)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def config(self) -> str:
        me = pwd.getpwuid(os.getuid()).pw_name
        # As root, dovecot's own users run its logins and auth, and the mail belongs to `dovecot`
        # (mail is never accessed as root); as anyone else everything runs as that user.
        internal, login = ("dovecot", "dovenull") if os.getuid() == 0 else (me, me)
        return f"""\
instance_name = voronka-test-{os.getpid()}
base_dir = {self.root / "run"}
state_dir = {self.root / "state"}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
log_path = {self.root / "dovecot.log"}
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
shutdown_clients = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
"""

    def start(self) -> None:
        (self.root / "state").mkdir()
        mail = self.root / "mail"
        mail.mkdir()
        if os.getuid() == 0:
            os.chown(mail, self.mail_owner.pw_uid, self.mail_owner.pw_gid)
        conf = self.root / "dovecot.conf"
        conf.write_text(self.config())
        self.conf = conf
        with (self.root / "stderr.log").open("wb") as stderr:  # the child keeps its own copy
            self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=stderr)
        from tests.conftest import wait_for

        if not wait_for(lambda: self.process.poll() is not None or self._greets(), timeout=START_TIMEOUT, step=0.05) \
                or self.process.poll() is not None:
            self.stop()
            stderr = (self.root / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"dovecot did not start on port {self.port}:\n{stderr}\n{self.log()}")

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as conn:
                return conn.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the master stops its children and removes its sockets
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def imap_server():
    """A private dovecot on 127.0.0.1 for this test process (each xdist worker has its own)."""
    if not os.access(DOVECOT, os.X_OK):
        pytest.fail("dovecot is not installed: run scripts/test (it installs dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="voronka-dovecot-"))
    root.chmod(0o755)  # its login and auth processes run as dovecot's own users
    owner = "dovecot" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
    server = Dovecot(root, free_port(), owner)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mailbox(imap_server) -> ImapAccount:
    """An IMAP user of this test's own: an empty INBOX."""
    return imap_server.account()
