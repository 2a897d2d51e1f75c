"""A reviewer in a real browser: the page shows the previews; the choices made there are what is published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.devstack import DevStack
from support.images import png

pytestmark = pytest.mark.e2e


def test_reviewer_approves_in_the_browser(devstack: DevStack, browser: Any, tmp_path: Path) -> None:
    run_id = devstack.upload(png(77, (200, 150)), "browser.png", title="Seen in a browser")
    run = devstack.wait_for(run_id, "awaiting_review")
    [asset] = run["assets"]

    page = browser.new_page()
    page.goto(run["review"]["url"])
    assert page.locator("h1").inner_text() == "Review: Seen in a browser"
    preview = page.locator(f'figure[data-asset-id="{asset["asset_id"]}"] img')
    preview.wait_for()
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 200
    assert page.locator("script").count() == 1  # the keys, allowed by its hash; the form works without it

    page.check(f'input[name="asset-{asset["asset_id"]}"][value="approve"]')
    page.fill("#reviewer", "Browser Reviewer")
    page.fill("#notes", "looks right")
    page.click("button[value=selection]")
    page.wait_for_selector("#outcome")
    assert "your decision is recorded" in page.locator("#outcome").inner_text()
    page.screenshot(path=str(tmp_path / "decided.png"))

    done = devstack.wait_for(run_id, "completed")
    assert done["status"] == "completed"
    assert done["published"][0]["library_key"] == "library/seen-in-a-browser/browser.png"

    page.go_back()
    page.reload()
    assert "This review was already decided" in page.content()
    page.close()


def test_reviewer_rejects_in_the_browser(devstack: DevStack, browser: Any) -> None:
    run_id = devstack.upload(png(78), "no.png", title="Rejected in a browser")
    run = devstack.wait_for(run_id, "awaiting_review")
    page = browser.new_page()
    page.goto(run["review"]["url"])
    page.click("button[name=all][value=reject]")
    page.wait_for_selector("#outcome")
    assert "rejected" in page.locator("ul").inner_text()
    assert devstack.wait_for(run_id, "rejected")["status"] == "rejected"
    page.close()


def test_a_forged_link_shows_a_clear_page(devstack: DevStack, browser: Any) -> None:
    page = browser.new_page()
    response = page.goto(f"{devstack.api_url}/reviews/abc?exp=1&sig=forged")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "This link is not valid"
    page.close()
