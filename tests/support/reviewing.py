"""Reviews and reviewers on in-process moto: a run waiting for review in a namespace, reviewers made through
the API, and a reviewer signed in through their link (the cookie a browser would keep)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from support.handlers import AUTH, call, respond

SENDER = "reviews@studio.example.test"


def awaiting(
    run_id: str = "run-1",
    namespace: str = "library",
    assets: int = 1,
    expires_in: int = 3600,
    title: str = "Sunset",
    source: str = "upload",
    **run_fields: Any,
) -> tuple[str, str]:
    """A run waiting for review with `assets` images (the first selected); returns (review id, review link)."""
    from rendergate import review, runs
    from rendergate.tables import Asset, Review, Run

    run = Run(run_id, status="awaiting_review", source=source, namespace=namespace, title=title, **run_fields)
    run.save()
    ids = []
    for index in range(assets):
        asset_id = f"{run_id}-asset-{index}"
        key = f"incoming/{run_id}/{index}.png"
        Asset(
            asset_id,
            run_id=run_id,
            bucket="media-bucket",
            key=key,
            filename=f"{index}.png",
            status="enriched",
            selected=index == 0,
            ordinal=index,
        ).save()
        ids.append(asset_id)
    row = Review(
        review.review_id_for(f"token-{run_id}"),
        run_id=run_id,
        task_token=f"token-{run_id}",
        asset_ids=ids,
        expires_at=int(time.time()) + expires_in,
        ttl=int(time.time()) + 10**6,
    )
    row.save()
    run.update(actions=[Run.review_id.set(row.review_id)])
    return row.review_id, runs.review_link(row)


def add_reviewer(name: str = "Ann", email: str = "ann@studio.example.test", **fields: Any) -> dict[str, Any]:
    """A reviewer made through `POST /reviewers` (namespaces default to ["library"])."""
    body = {"name": name, "email": email, "namespaces": ["library"], **fields}
    status, answer = call("reviewers", "POST", "/reviewers", body, headers=AUTH)
    assert status in (200, 201), answer
    return dict(answer)


def use_email_target(settings: Any, *more: dict[str, Any]) -> None:
    """An email target (its sender verified in SES, as an operator does once) and `more` targets."""
    import boto3

    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    settings(TARGETS=json.dumps([{"name": "mail", "kind": "email", "sender": SENDER}, *more]))


def sent_mail() -> list[Any]:
    """What SES sent, parsed (moto keeps raw messages)."""
    import email
    import email.policy

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return [email.message_from_string(m.raw_data, policy=email.policy.default) for m in backend.sent_messages]


def deliver_queued() -> list[str]:
    """Run the notify function on what waits on the delivery queue (as the event source mapping would), until
    nothing is left; the bodies handled."""
    import boto3

    from support.deliveries import handle

    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="deliveries")["QueueUrl"]
    handled = []
    for _ in range(10):
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not received:
            return handled
        handle(*(m["Body"] for m in received))
        for m in received:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        handled += [m["Body"] for m in received]
    return handled


def page(path: str, cookie: str | None = None, method: str = "GET", **query: str) -> dict[str, Any]:
    headers = {"cookie": cookie} if cookie else {}
    return respond("review", method, path, headers=headers, query=query or None)


def post_form(path: str, form: dict[str, str], cookie: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/x-www-form-urlencoded"} | ({"cookie": cookie} if cookie else {})
    return respond("review", "POST", path, urlencode(form).encode(), headers)


def link_of(message: Any) -> str:
    """The link a message carries in its plain-text part."""
    text = message.get_body(("plain",)).get_content()
    [url] = re.findall(r"https?://\S+", text)
    return str(url)


def sign_in(settings: Any, reviewer: dict[str, Any]) -> str:
    """Ask for the reviewer's link, read it from their email, open it and press the button; the cookie."""
    status, _ = call("reviewers", "POST", f"/reviewers/{reviewer['reviewer_id']}/link", headers=AUTH)
    assert status == 202
    deliver_queued()
    link = link_of(sent_mail()[-1])
    token = parse_qs(urlsplit(link).query)["token"][0]
    answer = post_form("/signin", {"token": token})
    assert answer["statusCode"] == 303, answer
    [cookie] = answer["cookies"]
    return str(cookie.split(";")[0])


def form_of(body: str) -> dict[str, str]:
    """The hidden fields of a page's form."""
    return dict(re.findall(r'type=hidden name=(\w+) value="([^"]*)"', body))


def signed(link: str) -> tuple[str, dict[str, str]]:
    """A review link's path and its signed query."""
    url = urlsplit(link)
    return url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
