"""From a signed link back to the subscriber it was made for, refusing anything that no longer matches."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from digest.audience.tokens import BadToken, TokenData, email_check, read_token
from digest.config import Settings
from digest.store.tables import MailingListRow, SubscriberRow


class GoneSubscriber(BadToken):
    """The token is genuine but its subscriber was removed (or the row id now belongs to someone else)."""


@dataclass
class Resolved:
    token: TokenData
    subscriber: SubscriberRow
    list_row: MailingListRow


def resolve(session: Session, settings: Settings, purpose: str, token: str) -> Resolved:
    """Verify ``token`` for ``purpose`` and load its subscriber; raises BadToken / GoneSubscriber."""
    data = read_token(settings, purpose, token)
    subscriber = session.get(SubscriberRow, data.subscriber_id)
    if (subscriber is None or subscriber.list_id != data.list_id
            or (data.email_check and email_check(subscriber.email_key) != data.email_check)):
        raise GoneSubscriber("This link belongs to a subscription that no longer exists")
    list_row = session.get(MailingListRow, subscriber.list_id)
    if list_row is None:
        raise GoneSubscriber("This link belongs to a list that no longer exists")
    return Resolved(data, subscriber, list_row)
