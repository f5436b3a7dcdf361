"""Load `config/*.yaml` into typed objects, or fail with every problem at file:line:col."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from bot.data.sources import SOURCES

from bot.errors import ConfigError
from bot.settings import yamlfile
from bot.settings import values
from bot.settings.models import SeriesFile, Settings, freeze
from bot.settings.paths import config_dir
from bot.suggest import did_you_mean


def model_fields_at(model: type[BaseModel], path: tuple) -> list[str]:
    """The field names valid at `path` inside `model`, for did-you-mean on unknown fields."""
    current = model
    for part in path:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            # inside a dict keyed by user names (series names): the value model follows
            continue
        current = _inner_model(field.annotation)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items() if n != "name"]
    return []


def _inner_model(annotation):
    """Find the BaseModel inside Optional[...], list[...] or dict[str, ...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def validate_document(doc: yamlfile.Document, model: type[BaseModel]):
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise ConfigError([doc.problem((), f"expected a mapping of settings, found {type(data).__name__}")])
    parsed, problems = validate_part(doc, model, data)
    if problems:
        raise ConfigError(sorted(problems))
    return parsed


def validate_part(doc: yamlfile.Document, model: type[BaseModel], data, prefix: tuple = ()):
    """(model instance, []) or (None, problems) for the part of `doc` at `prefix`."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        def allowed(path):
            inner = tuple(path[len(prefix):])
            # skip user-chosen keys (series names) when looking up the model
            return model_fields_at(model, tuple(p for p in inner if p not in _user_keys(inner)))
        return None, yamlfile.validation_problems(doc, exc, allowed, prefix)


def _user_keys(path):
    """Keys in `path` that are names the user chose (children of `series:`), not field names."""
    out = set()
    for i, part in enumerate(path):
        if i > 0 and path[i - 1] in ("series", "sources", "by_severity"):
            out.add(part)
    return out


def load_series(path: str | Path | None = None, display: str | None = None) -> dict[str, values.SeriesDef]:
    path = Path(path) if path else config_dir() / "series.yaml"
    doc = yamlfile.load(path, display)
    parsed = validate_document(doc, SeriesFile)
    problems = []
    for name, series in parsed.series.items():
        for i, ref in enumerate(series.chain):
            if ref.source not in SOURCES:
                where = ("series", name, "source") if i == 0 else ("series", name, "fallback", "source")
                problems.append(doc.problem(where, f"unknown source '{ref.source}'"
                                                   f"{did_you_mean(ref.source, SOURCES)} "
                                                   f"(known: {', '.join(SOURCES)})"))
    if problems:
        raise ConfigError(sorted(problems))
    return freeze(dict(parsed.series))


def load_settings(path: str | Path | None = None) -> values.Settings:
    path = Path(path) if path else config_dir() / "settings.yaml"
    if not path.exists():
        return freeze(Settings())
    doc = yamlfile.load(path)
    settings = validate_document(doc, Settings)
    unknown = [doc.problem(("sources", name), f"unknown source '{name}'{did_you_mean(name, SOURCES)} "
                                              f"(known: {', '.join(SOURCES)})", prefer_key=True)
               for name in settings.sources if name not in SOURCES]
    if unknown:
        raise ConfigError(unknown)
    return freeze(settings)
