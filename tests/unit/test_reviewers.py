"""Reviewers: managed with the API key, signed in by a link that a GET never uses up, with a session cookie
that alone never acts; their inbox lists what waits in their namespaces, oldest first."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from support.handlers import AUTH, call, respond
from support.reviewing import (
    add_reviewer,
    awaiting,
    deliver_queued,
    form_of,
    link_of,
    page,
    post_form,
    sent_mail,
    sign_in,
    signed,
    use_email_target,
)


def test_reviewers_are_created_once_listed_and_removed(aws: None) -> None:
    ann = add_reviewer()
    assert (
        call(
            "reviewers",
            "POST",
            "/reviewers",
            {"name": "Ann", "email": "ANN@studio.example.test", "namespaces": ["library"]},
            headers=AUTH,
        )[0]
        == 200
    )  # the same reviewer again
    status, answer = call(
        "reviewers",
        "POST",
        "/reviewers",
        {"name": "Ann B", "email": "ann@studio.example.test", "namespaces": ["other"]},
        headers=AUTH,
    )
    assert (status, answer["error"]) == (409, "Conflict")
    add_reviewer("Bob", "bob@studio.example.test", namespaces=["*"])
    first = call("reviewers", "GET", "/reviewers", headers=AUTH, query={"limit": "1"})[1]
    assert [r["name"] for r in first["reviewers"]] == ["Ann"]
    second = call("reviewers", "GET", "/reviewers", headers=AUTH, query={"limit": "1", "cursor": first["next_cursor"]})
    assert [r["name"] for r in second[1]["reviewers"]] == ["Bob"]

    from rendergate import reviewers

    assert [r.name for r in reviewers.of_namespace("library")] == ["Ann", "Bob"]
    assert [r.name for r in reviewers.of_namespace("elsewhere")] == ["Bob"]
    assert respond("reviewers", "DELETE", f"/reviewers/{ann['reviewer_id']}", headers=AUTH)["statusCode"] == 204
    assert [r.name for r in reviewers.of_namespace("library")] == ["Bob"]
    assert call("reviewers", "GET", f"/reviewers/{ann['reviewer_id']}", headers=AUTH)[0] == 404


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"email": "not an address"}, "email must be"),
        ({"name": ""}, "name must be"),
        ({"namespaces": []}, "namespaces must be"),
        ({"namespaces": ["Bad!"]}, "namespaces must be"),
        ({"slack_user_id": "ann"}, "slack_user_id"),
        ({"target": "Not A Name"}, "target must be"),
        ({"role": "admin"}, "unknown field: role"),
    ],
)
def test_a_reviewer_that_cannot_be_is_a_400(aws: None, change: dict[str, Any], named: str) -> None:
    body = {"name": "Ann", "email": "ann@studio.example.test", "namespaces": ["library"], **change}
    status, answer = call("reviewers", "POST", "/reviewers", body, headers=AUTH)
    assert status == 400 and named in answer["message"], answer


def test_the_reviewer_routes_need_the_api_key(aws: None) -> None:
    assert call("reviewers", "GET", "/reviewers")[0] == 401
    assert call("reviewers", "POST", "/reviewers", {"name": "x"})[0] == 401


def test_a_sign_in_link_arrives_by_email_as_text_and_html_and_signs_in_once(
    aws: None, settings: Callable[..., None]
) -> None:
    use_email_target(settings)
    ann = add_reviewer()
    status, answer = call("reviewers", "POST", f"/reviewers/{ann['reviewer_id']}/link", headers=AUTH)
    assert status == 202 and "url" not in str(answer) and answer["delivery"]["kind"] == "email"
    deliver_queued()
    [mail] = sent_mail()
    assert mail["To"] == "Ann <ann@studio.example.test>" and mail["From"] == "reviews@studio.example.test"
    link = link_of(mail)
    assert link in mail.get_body(("html",)).get_content()
    path, query = signed(link)

    for method in ("GET", "HEAD", "GET"):  # a mail scanner follows the link: nobody is signed in
        opened = page(path, method=method, **query)
        assert opened["statusCode"] == 200 and not opened.get("cookies")
    assert "Sign in as <strong>Ann</strong>" in opened["body"]

    pressed = post_form("/signin", form_of(opened["body"]))
    assert (pressed["statusCode"], pressed["headers"]["Location"]) == (303, "/inbox")
    [cookie] = pressed["cookies"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" in cookie  # the stack is served over https
    again = post_form("/signin", form_of(opened["body"]))
    assert again["statusCode"] == 410 and "used already" in again["body"]


def test_the_session_cookie_is_secure_when_the_api_is_https(aws: None, settings: Callable[..., None]) -> None:
    from rendergate import reviewers

    settings(PUBLIC_BASE_URL="https://reviews.example.test")
    assert "Secure" in str(reviewers.cookie("x", 60))
    settings(PUBLIC_BASE_URL="http://127.0.0.1:3000")
    assert "Secure" not in str(reviewers.cookie("x", 60))


def test_forged_expired_and_unreachable_sign_ins_are_refused(aws: None, settings: Callable[..., None]) -> None:
    from rendergate import reviewers

    ann = add_reviewer()
    assert page("/signin", token="forged.token")["statusCode"] == 403
    old = reviewers.sign_in_link(reviewers.get(ann["reviewer_id"]), int(time.time()) - 1)
    path, query = signed(old)
    assert page(path, **query)["statusCode"] == 410
    settings(TARGETS="[]")
    status, answer = call("reviewers", "POST", f"/reviewers/{ann['reviewer_id']}/link", headers=AUTH)
    assert status == 409 and "no way to reach Ann" in answer["message"]


def test_the_inbox_lists_pending_reviews_of_the_reviewers_namespaces_oldest_first(
    aws: None, settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rendergate import review
    from rendergate.tables import Review

    use_email_target(settings)
    review_id, _ = awaiting("run-old", title="Older", assets=3)
    expires_at = int(Review.get(review_id).expires_at)  # an hour after it opened
    monkeypatch.setattr(review, "clock", lambda: expires_at - 35 * 60 + 1)  # 25 minutes in
    time.sleep(0.01)
    awaiting("run-new", title="Newer", source="render")
    awaiting("run-elsewhere", namespace="elsewhere", title="Not mine")
    cookie = sign_in(settings, add_reviewer())

    inbox = page("/inbox", cookie)

    assert inbox["statusCode"] == 200
    body = inbox["body"]
    assert "Reviews waiting: 2" in body and "Not mine" not in body
    assert body.index("Older") < body.index("Newer")
    assert re.search(
        r"upload in <code>library</code> · 3 images, 1 selected · waiting 25 min · expires in 34 min", body
    )
    assert "render in <code>library</code> · 1 image" in body
    assert body.count('<div class=strip><img src="https://') == 2
    assert page("/inbox")["statusCode"] == 401
    assert page("/inbox", "rendergate_session=forged.value")["statusCode"] == 401


def test_signing_out_or_removal_ends_the_session(aws: None, settings: Callable[..., None]) -> None:
    use_email_target(settings)
    ann = add_reviewer()
    cookie = sign_in(settings, ann)
    inbox = page("/inbox", cookie)
    assert post_form("/signout", {}, cookie)["statusCode"] == 200  # without the form's token: nothing
    assert page("/inbox", cookie)["statusCode"] == 200
    out = post_form("/signout", form_of(inbox["body"]), cookie)
    assert out["statusCode"] == 200 and "Max-Age=0" in out["cookies"][0]
    time.sleep(1.01)
    assert page("/inbox", cookie)["statusCode"] == 401
    cookie = sign_in(settings, ann)
    assert page("/inbox", cookie)["statusCode"] == 200
    respond("reviewers", "DELETE", f"/reviewers/{ann['reviewer_id']}", headers=AUTH)
    assert page("/inbox", cookie)["statusCode"] == 401


def test_a_signed_in_decision_is_recorded_as_the_reviewer_and_opens_the_next_review(
    aws: None, settings: Callable[..., None]
) -> None:
    from rendergate.tables import Review

    use_email_target(settings)
    first_id, first = awaiting("run-1", assets=2)
    time.sleep(0.01)
    _, second = awaiting("run-2")
    ann = add_reviewer()
    cookie = sign_in(settings, ann)
    path, query = signed(first)
    shown = page(path, cookie, **query)
    assert "Signed in as <strong>Ann</strong>" in shown["body"] and "name=reviewer" not in shown["body"]
    form = form_of(shown["body"]) | {"reviewer": "Mallory", "note-run-1-asset-1": "too dark"}
    form |= {"asset-run-1-asset-0": "approve", "asset-run-1-asset-1": "reject", "submit": "selection"}

    answer = post_form(path, form, cookie)

    assert answer["statusCode"] == 303
    assert answer["headers"]["Location"] == f"{second}&after={first_id}"
    row = Review.get(first_id)
    assert (row.reviewer, row.reviewer_id, row.asset_notes) == (
        "Ann",
        ann["reviewer_id"],
        {"run-1-asset-1": "too dark"},
    )
    from rendergate.review import decision_of

    assert decision_of(row)["asset_notes"] == {"run-1-asset-1": "too dark"}
    next_path, next_query = signed(answer["headers"]["Location"])
    landed = page(next_path, cookie, **next_query)
    assert "Recorded: Sunset, 1 approved, 1 rejected. This is your next review." in landed["body"]


def test_a_cookie_alone_never_acts(aws: None, settings: Callable[..., None]) -> None:
    from rendergate.tables import Review

    use_email_target(settings)
    review_id, link = awaiting()
    cookie = sign_in(settings, add_reviewer())
    path, query = signed(link)
    # a page of another session, or none: the form's token does not match this session
    assert post_form(path, query | {"all": "approve"}, cookie)["statusCode"] == 403
    assert post_form(path, query | {"all": "approve", "csrf": "forged"}, cookie)["statusCode"] == 403
    # the session's token without the link's signature
    token = form_of(page(path, cookie, **query)["body"])["csrf"]
    assert post_form(path, {"all": "approve", "csrf": token}, cookie)["statusCode"] == 403
    # the token of another form of the same session: it is bound to what its form acts on
    _, other = awaiting("run-2")
    other_path, other_query = signed(other)
    other_token = form_of(page(other_path, cookie, **other_query)["body"])["csrf"]
    assert post_form(path, query | {"all": "approve", "csrf": other_token}, cookie)["statusCode"] == 403
    assert Review.get(review_id).status == "pending"
    # and with its own token it acts
    assert post_form(path, query | {"all": "approve", "csrf": token}, cookie)["statusCode"] in (200, 202, 303)


def test_link_scanners_change_nothing_on_any_link_we_send(aws: None, settings: Callable[..., None]) -> None:
    from rendergate.tables import Review, Reviewer, UsedToken

    use_email_target(settings)
    review_id, link = awaiting()
    ann = add_reviewer()
    call("reviewers", "POST", f"/reviewers/{ann['reviewer_id']}/link", headers=AUTH)
    deliver_queued()
    for sent in (link, link_of(sent_mail()[-1])):
        path, query = signed(sent)
        for method in ("GET", "HEAD"):
            answer = page(path, method=method, **query)
            assert (answer["statusCode"], answer.get("cookies") or []) == (200, [])
    assert Review.get(review_id).status == "pending"
    assert list(UsedToken.scan(UsedToken.key.startswith("used#"))) == []
    assert Reviewer.get(ann["reviewer_id"]).signed_out_at is None
