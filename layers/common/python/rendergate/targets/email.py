"""Email through Amazon SES: a message with a plain-text and an HTML part (the link written out in both), sent
with SendRawEmail from the target's verified `sender`, to the reviewer it is addressed to, or to the target's
own `to` list. SES throttling and service errors are retried; a message SES rejects fails; a sender SES does
not let us use disables the target until it is fixed."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from html import escape
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from rendergate.config import derived, settings
from rendergate.errors import Undeliverable
from rendergate.targets import messages
from rendergate.targets.http import Answer, Verdict

if TYPE_CHECKING:
    from rendergate.targets import Target

DEFAULT_EVENTS = ("review.requested.v1", "review.reminder.v1")
RETRIED = frozenset({"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure", "RequestTimeout"})
DISABLING = frozenset({"MailFromDomainNotVerifiedException", "AccountSendingPausedException", "AccessDenied"})


@derived
def _ses() -> Any:
    return boto3.client("ses", region_name=settings().region)


def deliver(target: Target, event: dict[str, Any]) -> tuple[Verdict, Answer | None, str]:
    """Send the event's message as one email; the verdict, no HTTP answer, and whether it was sent."""
    recipients = _recipients(target, event)
    mail = compose(target.sender, [formataddr(recipient) for recipient in recipients], event)
    addresses = [address for _, address in recipients]
    try:
        sent = _ses().send_raw_email(Source=target.sender, Destinations=addresses, RawMessage={"Data": mail.as_bytes()})
    except ClientError as error:
        code, said = error.response["Error"].get("Code", ""), error.response["Error"].get("Message", "")
        if code in RETRIED:
            return Verdict("retry", f"SES {code}: {said}"), None, "answered"
        if code in DISABLING:
            return Verdict("disabled", f"SES {code}: {said}"), None, "answered"
        return Verdict("failed", f"SES {code}: {said}"), None, "answered"
    except BotoCoreError as error:  # no connection or no answer: SES may have it
        return Verdict("retry", f"SES unreachable ({type(error).__name__})"), None, "unknown"
    return Verdict("delivered", message_id=str(sent["MessageId"])), None, "answered"


def compose(sender: str, recipients: list[str], event: dict[str, Any]) -> EmailMessage:
    """The email: subject, plain text with the link written out, and the same as HTML."""
    asked = messages.of(event) if event.get("type") in messages.ASKING else None
    if asked is not None:
        subject, text, url, action, lines = asked.subject, asked.text, asked.url, asked.action, asked.lines
    else:
        data = event.get("data") or {}
        subject = f"{event.get('type')}: {data.get('title') or data.get('run_id') or ''}".strip()
        url = str(data.get("public_url") or data.get("url") or "")
        action, lines = "Open", (subject,)
        text = subject + (f"\n\n{url}" if url else "")
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    mail.set_content(text)
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    link = f'<p><a href="{escape(url)}">{escape(action)}</a></p><p>Or copy this link: {escape(url)}</p>' if url else ""
    mail.add_alternative(
        f"<!doctype html><html><body><h1>{escape(subject)}</h1>{paragraphs}{link}</body></html>", subtype="html"
    )
    return mail


def _recipients(target: Target, event: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, address) of whom the message goes to."""
    recipient = event.get("recipient")
    if isinstance(recipient, dict) and recipient.get("email"):
        return [(str(recipient.get("name") or ""), str(recipient["email"]))]
    listed = [("", address.strip()) for address in target.to.split(",") if address.strip()]
    if not listed:
        raise Undeliverable(f"the email target {target.name} has no `to` and the event names no reviewer")
    return listed
