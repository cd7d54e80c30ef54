"""Sending: provider backends (sendgrid, smtp, file), the outbox dispatcher, and the SendGrid stand-in."""
