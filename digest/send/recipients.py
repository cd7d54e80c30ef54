"""The personal values of a batch's recipients (name, address, signed links), made at the moment of sending.

`render.personalize.recipient_for` is the reference; this does the same for a thousand readers at a time with
one `LinkSigner` per purpose, so signing two links per reader costs microseconds, not the tens a fresh
itsdangerous signer costs.
"""

from __future__ import annotations

from digest.audience.tokens import LinkSigner
from digest.audience.validate import clean_name
from digest.config import Settings
from digest.render.personalize import Recipient as PersonalValues
from digest.send.backends.base import Recipient


class RecipientMaker:
    def __init__(self, settings: Settings) -> None:
        self.base = str(settings.base_url).rstrip("/")
        self.unsubscribe = LinkSigner(settings, "unsubscribe")
        self.preferences = LinkSigner(settings, "preferences")

    def person(self, list_id: int, subscriber_id: int, email: str, name: str | None) -> PersonalValues:
        value = self.unsubscribe.value(subscriber_id, list_id, email)  # the same for both purposes
        return PersonalValues(
            email=email, name=clean_name(name), subscriber_id=subscriber_id,
            unsubscribe_url=f"{self.base}/unsubscribe/{self.unsubscribe.signed(value)}",
            preferences_url=f"{self.base}/preferences/{self.preferences.signed(value)}",
        )

    def recipient(self, delivery_id: int, list_id: int, subscriber_id: int, email: str,
                  name: str | None) -> Recipient:
        return Recipient(delivery_id, self.person(list_id, subscriber_id, email, name))
