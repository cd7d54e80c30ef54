"""render stage: a ranked Selection → subject, preheader, MJML, inlined HTML, plain text, and RFC 5322 bytes.

Jinja2 (autoescape on) → MJML (mjml-python) → premailer → size guard; per-recipient values go in afterwards by
substitution of placeholder tokens (``personalize``), so each variant is rendered once.
"""
