"""Languages of the reader: which are supported, their message catalogs, dates and typography.

One module per job: ``languages`` (BCP 47 tags, the effective language of a reader), ``catalog`` (gettext
catalogs read from the .po files), ``jinja`` (the Jinja i18n extension on an environment), ``dates`` (dates and
times through Babel) and ``typography`` (spaces and quotes of the language).
"""
