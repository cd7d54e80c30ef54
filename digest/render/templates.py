"""The Jinja environment: the newsroom's ``templates_dir`` first, the package's default templates behind it.

Autoescape is on for everything except ``*.txt.j2`` (the plain-text part), undefined names are errors, and any
template failure becomes a ``TemplateError`` naming the template file and line the newsroom has to fix.
"""

from __future__ import annotations

import functools
import hashlib
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from digest.config import Settings
from digest.errors import TemplateProblem
from digest.i18n import jinja as i18n_jinja

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
TEMPLATE_SUFFIXES = (".j2",)


class TemplateError(TemplateProblem):
    """A template failed; ``template`` and ``line`` say where (line is None when unknown)."""

    def __init__(self, message: str, *, template: str, line: int | None = None) -> None:
        self.template = template
        self.line = line
        self.reason = message
        where = template if line is None else f"{template}:{line}"
        super().__init__(f"{where}: {message}")


def search_path(settings: Settings) -> list[Path]:
    """Folders templates are looked up in, in order: the newsroom's, then the built-in defaults."""
    project = settings.path(str(settings.templates_dir))
    paths = [project] if project.is_dir() and project.resolve() != PACKAGE_TEMPLATES else []
    return [*paths, PACKAGE_TEMPLATES]


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(".txt.j2")


_ENVS: dict[tuple[str, ...], jinja2.Environment] = {}


def environment(settings: Settings) -> jinja2.Environment:
    """One environment per search path; Jinja re-reads a template whose file changed (auto_reload)."""
    paths = tuple(str(p) for p in search_path(settings))
    env = _ENVS.get(paths)
    if env is None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(list(paths)),
            autoescape=_autoescape,
            undefined=jinja2.StrictUndefined,
            auto_reload=True,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # {% trans %} and _() in the language of the context's `language` (one environment for every language).
        i18n_jinja.install(env)
        _ENVS[paths] = env
    return env


def display_name(path: str | None, settings: Settings | None = None) -> str:
    """A template path as a newsroom would look for it: relative to the project, or marked as built-in."""
    if not path:
        return "<template>"
    p = Path(path)
    try:
        return f"digest/templates/{p.resolve().relative_to(PACKAGE_TEMPLATES)} (built-in)"
    except ValueError:
        pass
    if settings is not None:
        try:
            return str(p.resolve().relative_to(settings.project_dir.resolve()))
        except ValueError:
            pass
    return str(p)


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost traceback frame that belongs to a template (Jinja rewrites frames to template lines)."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(TEMPLATE_SUFFIXES) or frame.filename == "<template>":
            found = (frame.filename, frame.lineno)
    return found


def as_template_error(exc: Exception, settings: Settings | None, fallback: str) -> TemplateError:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        name = exc.filename or exc.name or fallback
        return TemplateError(exc.message or str(exc), template=display_name(name, settings), line=exc.lineno)
    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateError(f"template {exc.name!r} not found", template=fallback)
    filename, line = _template_frame(exc)
    message = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
    return TemplateError(message, template=display_name(filename, settings) if filename else fallback, line=line)


def render(settings: Settings, name: str, context: Mapping[str, Any]) -> str:
    env = environment(settings)
    try:
        return env.get_template(name).render(context)
    except TemplateError:
        raise
    except Exception as exc:
        raise as_template_error(exc, settings, name) from exc


_STRING_ENV = SandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)


@functools.lru_cache(maxsize=64)
def _compiled_string(source: str) -> jinja2.Template:
    # Compiling costs more than rendering, and the subject is rendered several times for every variant.
    return _STRING_ENV.from_string(source)


def render_string(source: str, context: Mapping[str, Any], *, origin: str) -> str:
    """Render a one-line template from the config (the subject): sandboxed, not escaped (it is a header)."""
    try:
        return _compiled_string(source).render(context)
    except Exception as exc:
        line = exc.lineno if isinstance(exc, jinja2.TemplateSyntaxError) else None
        message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
        raise TemplateError(message or type(exc).__name__, template=origin, line=line) from exc


def template_files(settings: Settings) -> list[Path]:
    """Every template file a render may read, newsroom's first (for linting and fingerprints)."""
    files: list[Path] = []
    for folder in search_path(settings):
        files.extend(sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(TEMPLATE_SUFFIXES)))
    return files


def fingerprint(settings: Settings) -> str:
    """Changes whenever a template file is added, removed or edited: part of the render cache key."""
    h = hashlib.sha256()
    for path in template_files(settings):
        stat = path.stat()
        h.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return h.hexdigest()
