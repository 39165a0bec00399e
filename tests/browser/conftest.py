"""Playwright driving Debian's Chromium (never a downloaded browser) against live_server."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def boss(transactional_db):
    """An English-speaking admin (a test module may define its own)."""
    from tests.factories import UserFactory, role

    return UserFactory(username="boss", language="en", role=role("Admin"))


@pytest.fixture
def stages(transactional_db):
    """The default funnel's first line's stages, in board order."""
    from deals.models import Stage

    return list(Stage.objects.filter(line__funnel__name="Sales", line__position=1).order_by("position"))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server, transactional_db):
    """Pages in fresh contexts; any console error (a CSP refusal, a JS error) fails the test.

    It asks for the database itself, so the pages are closed before the database is flushed: a
    page still polling during the flush's TRUNCATE could deadlock with it."""
    contexts, problems = [], []

    def make(user=None, password="pass-12345"):
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: msg.type == "error" and not _expected(msg.text) and problems.append(f"{msg.text} at {msg.location}"))
        page.on("pageerror", lambda error: problems.append(f"{error} {error.stack}"))
        page.base = live_server.url
        if user is not None:
            sign_in(page, user.username, password)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not problems, f"browser console errors: {problems}"


def _expected(text: str) -> bool:
    # 4xx answers a test provokes on purpose show up as failed resource loads
    return "Failed to load resource" in text and ("404" in text or "403" in text or "409" in text)


def sign_in(page, username, password="pass-12345"):
    page.goto(page.base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/clients/**")


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def drag(page, source, target):
    """Drag with real mouse moves, as a person does (SortableJS listens to pointer events)."""
    source.scroll_into_view_if_needed()
    box_from, box_to = source.bounding_box(), target.bounding_box()
    page.mouse.move(box_from["x"] + box_from["width"] / 2, box_from["y"] + box_from["height"] / 2)
    page.mouse.down()
    start_x, start_y = box_from["x"] + box_from["width"] / 2, box_from["y"] + box_from["height"] / 2
    end_x, end_y = box_to["x"] + box_to["width"] / 2, box_to["y"] + 2
    for step in range(1, 16):
        page.mouse.move(start_x + (end_x - start_x) * step / 15, start_y + (end_y - start_y) * step / 15)
        page.wait_for_timeout(20)
    page.mouse.up()
