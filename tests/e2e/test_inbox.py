"""A reviewer in a real browser: signed in by the link mailed to them (SES on the local stack), their inbox,
the keyboard (approve three, reject one, Enter, and the next review opens), the same without JavaScript, a
phone's width, and axe-core finding no serious or critical problem on any of these pages."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.devstack import DevStack, Entities
from support.images import png

pytestmark = pytest.mark.e2e

SENDER = "reviews@studio.example.test"
NAMESPACE = "keys"
SMALL = {"width": 96, "height": 96, "steps": 2}
PHONE = {"width": 375, "height": 740}


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, as `rule: what` lines."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def mailed_links(devstack: DevStack, to: str) -> list[str]:
    """The links of the mail SES sent to `to`, oldest first, read through moto's API."""
    data = requests.get(f"{devstack.state['moto_url']}/moto-api/data.json", timeout=10).json()
    mails = [m["raw_data"] for m in data.get("ses", {}).get("RawMessage", []) if to in m["raw_data"]]
    plain = [email.message_from_string(raw, policy=email.policy.default).get_body(("plain",)) for raw in mails]
    return [link for part in plain if part is not None for link in re.findall(r"https?://\S+", part.get_content())]


@pytest.fixture(scope="module")
def reviewer(devstack: DevStack) -> Iterator[dict[str, Any]]:
    """Ann, who reviews `keys`, reached by email; the stack's targets are put back afterwards."""
    ssm, param = devstack.aws("ssm"), devstack.state["targets_param"]
    before = ssm.get_parameter(Name=param, WithDecryption=True)["Parameter"]["Value"]
    devstack.aws("ses").verify_email_identity(EmailAddress=SENDER)
    document = json.dumps([{"name": "mail", "kind": "email", "sender": SENDER}])
    ssm.put_parameter(Name=param, Value=document, Type="SecureString", Overwrite=True)
    body = {"name": "Ann Keys", "email": "ann.keys@studio.example.test", "namespaces": [NAMESPACE]}
    answer = requests.post(f"{devstack.api_url}/reviewers", json=body, headers=devstack.auth, timeout=10)
    assert answer.status_code in (200, 201), answer.text
    yield dict(answer.json())
    ssm.put_parameter(Name=param, Value=before, Type="SecureString", Overwrite=True)


def waiting_render(devstack: DevStack, count: int, title: str) -> dict[str, Any]:
    params = {"prompt": f"{title} in the rain", "seed": 4242 + count, **SMALL}
    run_id = devstack.render(workflow="txt2img", params=params, count=count, title=title, namespace=NAMESPACE)["run_id"]
    return devstack.wait_for(run_id, "awaiting_review", timeout=90)


def sign_in(devstack: DevStack, browser: Any, reviewer: dict[str, Any], **context: Any) -> Any:
    """A browser context signed in as the reviewer, through the mailed link and its button."""
    before = set(mailed_links(devstack, reviewer["email"]))
    sent = requests.post(
        f"{devstack.api_url}/reviewers/{reviewer['reviewer_id']}/link", headers=devstack.auth, timeout=10
    )
    assert sent.status_code == 202, sent.text
    link = _eventually(lambda: _new_sign_in_link(devstack, reviewer["email"], before), "no sign-in mail arrived")
    session = browser.new_context(**context)
    page = session.new_page()
    page.goto(link)
    assert page.context.cookies() == []  # opening the link signed nobody in
    page.click("button[type=submit]")
    page.wait_for_url("**/inbox")
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > time.time()
    page.close()
    return session


def _new_sign_in_link(devstack: DevStack, to: str, before: set[str]) -> str | None:
    return next((link for link in mailed_links(devstack, to) if "/signin?" in link and link not in before), None)


def _eventually(find: Callable[[], str | None], failure: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while (found := find()) is None:
        assert time.monotonic() < deadline, failure
        time.sleep(0.3)
    return found


def test_the_keyboard_decides_and_the_next_review_opens(
    devstack: DevStack, browser: Any, reviewer: dict[str, Any], tmp_path: Path
) -> None:
    first = waiting_render(devstack, 4, "Four lamps")
    second = waiting_render(devstack, 1, "One lamp")
    session = sign_in(devstack, browser, reviewer)
    page = session.new_page()

    page.goto(f"{devstack.api_url}/inbox")
    titles = page.locator("ol.inbox h2").all_inner_texts()
    assert titles.index("Four lamps") < titles.index("One lamp")
    assert page.locator(f'li[data-review-id="{first["review"]["review_id"]}"] .strip img').count() == 4
    assert serious(page) == []

    page.click("text=Four lamps")
    page.wait_for_selector("figure.current")
    assert "a 96 x 96" not in page.content() and "Four lamps in the rain" in page.content()
    assert serious(page) == []
    page.keyboard.press("?")
    assert page.locator("#keys").is_visible()
    page.keyboard.press("?")
    for key in ("a", "a", "a", "r"):
        page.keyboard.press(key)
    for key, note in (("k", "a little soft"), ("j", "the last one is too dark")):  # back one, then forward
        page.keyboard.press(key)
        page.keyboard.press("n")
        page.keyboard.type(note)
        page.keyboard.press("Escape")
    page.keyboard.press("Enter")

    page.wait_for_selector("#previous")
    assert second["review"]["review_id"] in page.url
    assert "Four lamps, 3 approved, 1 rejected" in page.locator("#previous").inner_text()
    decided = devstack.wait_for(first["run_id"], "completed")
    assert len(decided["published"]) == 3
    ids = [asset["asset_id"] for asset in first["assets"]]
    row = _review_row(devstack, first["review"]["review_id"])
    assert (row["reviewer"], row["approved"], row["rejected"]) == ("Ann Keys", ids[:3], ids[3:])
    assert json.loads(row["asset_notes"]) == {ids[2]: "a little soft", ids[3]: "the last one is too dark"}

    page.keyboard.press("Shift+A")
    page.keyboard.press("Enter")
    page.wait_for_selector("#outcome")
    assert "Back to your inbox" in page.content()
    assert serious(page) == []
    page.screenshot(path=str(tmp_path / "decided.png"))
    session.close()


def test_without_javascript_the_forms_still_decide(devstack: DevStack, browser: Any) -> None:
    run_id = devstack.upload(png(91, (120, 90)), "nojs.png", title="No script", namespace=NAMESPACE)
    run = devstack.wait_for(run_id, "awaiting_review")
    [asset] = run["assets"]
    session = browser.new_context(java_script_enabled=False)
    page = session.new_page()
    page.goto(run["review"]["url"])
    page.check(f'input[name="asset-{asset["asset_id"]}"][value="reject"]')
    page.fill(f'textarea[name="note-{asset["asset_id"]}"]', "not this one")
    page.fill("#reviewer", "Nobody Scripted")
    page.click("#submit")
    page.wait_for_selector("#outcome")
    assert "your decision is recorded" in page.locator("#outcome").inner_text()
    assert devstack.wait_for(run_id, "rejected")["status"] == "rejected"
    session.close()


def test_a_phone_reviews_without_scrolling_sideways(
    devstack: DevStack, browser: Any, reviewer: dict[str, Any], tmp_path: Path
) -> None:
    # one word longer than a phone is wide: the page must break it rather than scroll sideways
    run = waiting_render(devstack, 2, "Lighthouse_keepers_logbook_entry_for_the_longest_night_of_the_year")
    session = sign_in(devstack, browser, reviewer, viewport=PHONE, is_mobile=True)
    page = session.new_page()
    for url in (f"{devstack.api_url}/inbox", run["review"]["url"]):
        page.goto(url)
        page.wait_for_load_state("load")
        # against the 375 px we set: a mobile browser widens its viewport (innerWidth) to what overflows
        widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert max(widths) <= PHONE["width"], (url, widths)
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    from PIL import Image

    with Image.open(tmp_path / "phone.png") as shot:
        assert shot.width == PHONE["width"], shot.size
    session.close()


def test_the_entity_review_page_has_no_serious_accessibility_problem(devstack: DevStack, browser: Any) -> None:
    media = Entities(devstack)
    answer = media.register(kind="movie", tmdb_id=603, namespace="a11y")
    assert answer.status_code in (200, 201), answer.text
    entity = media.wait_for(answer.json()["entity_id"], "enriched", review=True)
    page = browser.new_page()
    page.goto(entity["enrichment"]["review"]["url"])
    assert "The Matrix" in page.content()
    assert serious(page) == []
    page.close()


def _review_row(devstack: DevStack, review_id: str) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    item = devstack.aws("dynamodb").get_item(
        TableName=devstack.state["tables"]["reviews"], Key={"review_id": {"S": review_id}}
    )["Item"]
    return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}
