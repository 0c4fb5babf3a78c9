"""Every problem of a configuration document, in one pass.

`problems(data)` runs the schema (types, ranges, unknown keys) and, whatever the schema
found, the checks that span fields or need compiling (JSON paths, route templates, the
two backends against each other, listen against admin_listen), each on the parts of the
document it can read. Every problem names its key path and the value it got; an unknown
key names the nearest known one:

    mode: Input should be 'legacy-only', 'shadow', 'cutover' or 'candidate-only'
          (got 'shaddow'; did you mean 'shadow'?)
    mirror.timout: unknown key (did you mean 'timeout'?)
    routes[0].methods[0]: not an HTTP method: 'GTE' (did you mean 'GET'?)
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

BACKENDS = ("legacy", "candidate")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def problems(data: dict, model: type[BaseModel]) -> list[str]:
    """Every problem of `data` as a `model` (the whole config), schema and cross-field."""
    found = _backend_problems(data)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        found += [_describe(error, model) for error in exc.errors()]
    found += _cross_field(data)
    return list(dict.fromkeys(found))


def suggestion(word: str, known: typing.Iterable[str]) -> str:
    """`; did you mean 'x'?` for the nearest known word, or ''."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def location(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif str(item).startswith("function-"):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _describe(error: dict, model: type[BaseModel]) -> str:
    loc, kind, given = error["loc"], error["type"], error.get("input")
    where = location(loc)
    if kind == "extra_forbidden":
        hint = suggestion(str(loc[-1]), _known_keys(model, loc[:-1]))
        return f"{where}: unknown key" + (f" ({hint})" if hint else "")
    if kind == "missing":
        return f"{where}: required"
    message = error["msg"].removeprefix("Value error, ")
    notes = []
    if isinstance(given, (str, int, float, bool)) and repr(given) not in message:
        notes.append(f"got {given!r}")
    if kind == "literal_error" and isinstance(given, str):
        hint = suggestion(given, re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", "")))
        if hint:
            notes.append(hint)
    return f"{where}: {message}" + (f" ({'; '.join(notes)})" if notes else "")


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at `loc` (a path into the document), or [] if unknown."""
    current: Any = model
    for item in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(item, int) and origin is list:
            current = typing.get_args(current)[0]
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif isinstance(current, type) and issubclass(current, BaseModel) \
                and item in current.model_fields:
            current = current.model_fields[item].annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _backend_problems(data: dict) -> list[str]:
    """The two backend keys are fixed words; checked on the raw document so that this is
    reported even when a backend's own fields are invalid too."""
    backends = data.get("backends")
    if not isinstance(backends, dict):
        return []
    found = []
    for name in sorted(set(backends) - set(BACKENDS)):
        hint = suggestion(name, BACKENDS)
        found.append(f"backends.{name}: unknown backend; the two backends are 'legacy' and "
                      f"'candidate'" + (f" ({hint})" if hint else ""))
    missing = [name for name in BACKENDS if name not in backends]
    if missing:
        found.append(f"backends: missing backend(s) {missing}")
    return found


def _cross_field(data: dict) -> list[str]:
    found: list[str] = []
    listen, admin = data.get("listen", "127.0.0.1:8080"), data.get("admin_listen", "127.0.0.1:8081")
    if isinstance(listen, str) and listen == admin and not listen.endswith(":0"):
        found.append(f"admin_listen: the same address as listen: {admin!r}")
    found += _backend_pair(data.get("backends"))
    found += _paths("compare", data.get("compare"))
    routes = data.get("routes")
    if isinstance(routes, list):
        for index, route in enumerate(routes):
            if isinstance(route, dict):
                found += _paths(f"routes[{index}]", route)
                found += _methods(f"routes[{index}].methods", route.get("methods"))
        found += _templates(routes)
    gate = data.get("gate")
    if isinstance(gate, dict) and isinstance(gate.get("expected_routes"), list):
        for index, entry in enumerate(gate["expected_routes"]):
            method = entry.split(" ", 1)[0] if isinstance(entry, str) and " " in entry else None
            if method is not None:
                found += _methods(f"gate.expected_routes[{index}]", [method], itemised=False)
    rows = data.get("rows")
    if isinstance(rows, dict) and isinstance(rows.get("columns"), dict):
        for key in rows["columns"]:
            table, dot, column = str(key).partition(".")
            if not (dot and table and column):
                found.append(f"rows.columns.{key!r}: not 'table.column' or '*.column': {key!r}")
    return found


def _backend_pair(backends: Any) -> list[str]:
    if not isinstance(backends, dict):
        return []
    sides = {n: b for n, b in backends.items() if n in BACKENDS and isinstance(b, dict)}
    if len(sides) != 2:
        return []
    legacy, candidate = sides["legacy"], sides["candidate"]
    found = []
    urls = [str(side.get("url", "")).rstrip("/") for side in (legacy, candidate)]
    if urls[0] and urls[0] == urls[1]:
        found.append(f"backends.candidate.url: the same URL as backends.legacy.url: {urls[1]!r}"
                     " (the shadow would be the primary itself)")
    for name, side in sides.items():
        if side.get("database") and side.get("databases"):
            found.append(f"backends.{name}.databases: set together with backends.{name}."
                         "database; name one database with `database`, several with "
                         "`databases` (not both)")
    has = {name: bool(side.get("database") or side.get("databases"))
           for name, side in sides.items()}
    if has["legacy"] != has["candidate"]:
        unset = "candidate" if has["legacy"] else "legacy"
        other = "legacy" if unset == "candidate" else "candidate"
        found.append(f"backends.{unset}.database: not set while backends.{other}.database is;"
                     " row verification needs both (set both, or neither)")
    return found


def _paths(prefix: str, section: Any) -> list[str]:
    """Each JSON path of `ignore_paths` / `unordered_paths` that does not compile."""
    from shadow.compare.jsonpath import compile_pattern

    if not isinstance(section, dict):
        return []
    found = []
    for key in ("ignore_paths", "unordered_paths"):
        paths = section.get(key)
        if not isinstance(paths, list):
            continue
        for index, text in enumerate(paths):
            if not isinstance(text, str):
                continue
            try:
                compile_pattern(text)
            except ValueError as exc:
                found.append(f"{prefix}.{key}[{index}]: {exc}")
    return found


def _methods(where: str, methods: Any, itemised: bool = True) -> list[str]:
    if not isinstance(methods, list):
        return []
    found = []
    for index, method in enumerate(methods):
        if isinstance(method, str) and method.isupper() and method not in HTTP_METHODS:
            hint = suggestion(method.upper(), HTTP_METHODS)
            at = f"{where}[{index}]" if itemised else where
            found.append(f"{at}: not an HTTP method: {method!r}" + (f" ({hint})" if hint else ""))
    return found


def _templates(routes: list) -> list[str]:
    """Templates given twice for the same methods (only among otherwise valid routes)."""
    from shadow.routes import RoutePolicy, RouteTable
    from shadow.settings import Route

    policies = []
    for route in routes:
        try:
            valid = Route.model_validate(route)
        except ValidationError:
            continue
        policies.append(RoutePolicy(template=valid.template, methods=frozenset(valid.methods)))
    try:
        RouteTable(policies, fold_ids=False)
    except ValueError as exc:
        return [f"routes: {exc}"]
    return []
