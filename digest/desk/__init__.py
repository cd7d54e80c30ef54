"""The editor's desk: an edition's editorial overrides (pin, leave out, order, add), their audit trail, and
the state the preview and `digest editions desk` show. ``overrides`` is what the ranking sees
(through ``digest.editions.ranker_for``); ``actions`` changes it; ``view`` describes it."""
