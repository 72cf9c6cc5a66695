"""Render a Helm chart without helm: the Go-template subset our chart is written in.

Supported: {{ }} with {{- -}} trimming, comments, if / else if / else, range (lists and
maps, with `$k, $v :=`), with, define / template / include, variables (`$x :=`, `$`),
pipelines, parentheses, and the Sprig functions the chart uses. Anything else raises, so
the chart cannot quietly drift outside what this renders. When `helm` is installed the
tests render with it as well and compare.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"{{(-\s)?(.*?)(\s-)?}}", re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\||:=|=|,|[^\s()|,]+)')


@dataclass
class Node:
    kind: str  # text | expr | if | range | with | define | template | assign
    value: Any = None
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)
    names: tuple[str, ...] = ()


class TemplateError(ValueError):
    pass


def _lex(source: str) -> list[tuple[str, str]]:
    """-> [('text', s) | ('action', s)] with whitespace trimming applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        if out and out[-1][0] == "trim":
            out.pop()
            text = text.lstrip()
        out.append(("text", text))
        body = m.group(2).strip()
        if not body.startswith("/*"):
            out.append(("action", body))
        if m.group(3):
            out.append(("trim", ""))
        pos = m.end()
    tail = source[pos:]
    if out and out[-1][0] == "trim":
        out.pop()
        tail = tail.lstrip()
    out.append(("text", tail))
    return out


def _parse(
    tokens: list[tuple[str, str]], pos: int = 0, stop: tuple[str, ...] = ()
) -> tuple[list[Node], int, str]:
    nodes: list[Node] = []
    while pos < len(tokens):
        kind, text = tokens[pos]
        pos += 1
        if kind == "text":
            if text:
                nodes.append(Node("text", text))
            continue
        word = text.split(None, 1)[0] if text else ""
        rest = text[len(word) :].strip()
        if word in ("end", "else") and word in stop:
            return nodes, pos, text
        if word in ("if", "with"):
            node, pos = _parse_if(tokens, pos, word, rest)
            nodes.append(node)
        elif word == "range":
            names: tuple[str, ...] = ()
            if ":=" in rest:
                left, rest = rest.split(":=", 1)
                names = tuple(n.strip() for n in left.split(","))
            node = Node("range", rest.strip(), names=names)
            node.body, pos, ended = _parse(tokens, pos, ("end", "else"))
            if ended == "else":
                node.orelse, pos, _ = _parse(tokens, pos, ("end",))
            nodes.append(node)
        elif word == "define":
            node = Node("define", _unquote(rest))
            node.body, pos, _ = _parse(tokens, pos, ("end",))
            nodes.append(node)
        elif word == "template":
            name, _, arg = rest.partition(" ")
            nodes.append(Node("template", (_unquote(name), arg.strip() or ".")))
        elif re.match(r"^\$\w*\s*:?=", text):
            name, expr = re.split(r":?=", text, maxsplit=1)
            nodes.append(Node("assign", expr.strip(), names=(name.strip(),)))
        else:
            nodes.append(Node("expr", text))
    if stop:
        raise TemplateError(f"missing {{{{ end }}}} (wanted one of {stop})")
    return nodes, pos, ""


def _parse_if(tokens: list[tuple[str, str]], pos: int, word: str, cond: str) -> tuple[Node, int]:
    node = Node(word, cond)
    node.body, pos, ended = _parse(tokens, pos, ("end", "else"))
    if ended.startswith("else if"):
        # `else if X` is an if nested in the else branch; the chain shares one `end`.
        nested, pos = _parse_if(tokens, pos, "if", ended[len("else if") :].strip())
        node.orelse = [nested]
    elif ended == "else":
        node.orelse, pos, _ = _parse(tokens, pos, ("end",))
    return node, pos


def _unquote(token: str) -> str:
    if token.startswith('"'):
        return str(yaml.safe_load(token))
    if token.startswith("`"):
        return token[1:-1]
    return token


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, (list, dict)) and not value)


def _to_yaml(value: Any) -> str:
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n").removesuffix("\n...")


def _indent(n: int, text: Any) -> str:
    return "\n".join(" " * n + line for line in str(text).split("\n"))


def _required(message: str, value: Any) -> Any:
    if not truthy(value):
        raise TemplateError(message)
    return value


def _printf(fmt: str, *args: Any) -> str:
    return re.sub(r"%[vsd]", "{}", fmt).format(*args)


FUNCS: dict[str, Callable[..., Any]] = {
    "toYaml": _to_yaml,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "indent": _indent,
    "quote": lambda v: '"' + str("" if v is None else v).replace("\\", "\\\\").replace('"', '\\"') + '"',
    "default": lambda d, v=None: v if truthy(v) else d,
    "printf": _printf,
    "trunc": lambda n, s: s[:n],
    "trimSuffix": lambda suffix, s: s.removesuffix(suffix),
    "replace": lambda old, new, s: s.replace(old, new),
    "lower": lambda s: str(s).lower(),
    "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truthy(x)), a[-1]),
    "not": lambda v: not truthy(v),
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "required": _required,
    "toString": str,
    "int": int,
    "list": lambda *a: list(a),
    "dict": lambda *a: dict(zip(a[::2], a[1::2], strict=True)),
    "hasKey": lambda d, k: k in d,
    "empty": lambda v: not truthy(v),
    "contains": lambda sub, s: sub in s,
    "join": lambda sep, items: sep.join(str(i) for i in items),
    "index": lambda coll, *keys: _index(coll, keys),
}


def _index(coll: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        coll = coll[key]
    return coll


class Renderer:
    def __init__(self) -> None:
        self.defines: dict[str, list[Node]] = {}

    def load(self, source: str) -> list[Node]:
        nodes, _, _ = _parse(_lex(source))
        for node in nodes:
            if node.kind == "define":
                self.defines[node.value] = node.body
        return [n for n in nodes if n.kind != "define"]

    def render(self, nodes: list[Node], dot: Any, scope: dict[str, Any]) -> str:
        out: list[str] = []
        scope = dict(scope)
        for node in nodes:
            if node.kind == "text":
                out.append(node.value)
            elif node.kind == "expr":
                value = self.pipeline(node.value, dot, scope)
                out.append("" if value is None else _go_str(value))
            elif node.kind == "assign":
                scope[node.names[0]] = self.pipeline(node.value, dot, scope)
            elif node.kind in ("if", "with"):
                value = self.pipeline(node.value, dot, scope)
                branch = node.body if truthy(value) else node.orelse
                out.append(
                    self.render(branch, value if node.kind == "with" and truthy(value) else dot, scope)
                )
            elif node.kind == "range":
                out.append(self._range(node, dot, scope))
            elif node.kind == "template":
                name, arg = node.value
                out.append(self.include(name, self.pipeline(arg, dot, scope)))
        return "".join(out)

    def include(self, name: str, dot: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"no template named {name!r}")
        return self.render(self.defines[name], dot, {"$": dot})

    def _range(self, node: Node, dot: Any, scope: dict[str, Any]) -> str:
        value = self.pipeline(node.value, dot, scope)
        items = sorted(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
        if not items:
            return self.render(node.orelse, dot, scope)
        parts = []
        for key, item in items:
            inner = dict(scope)
            if len(node.names) == 2:
                inner[node.names[0]], inner[node.names[1]] = key, item
            elif node.names:
                inner[node.names[0]] = item
            parts.append(self.render(node.body, item, inner))
        return "".join(parts)

    # --- expressions ---
    def pipeline(self, text: str, dot: Any, scope: dict[str, Any]) -> Any:
        tokens = _TOKEN.findall(text)
        value, pos = self._pipe(tokens, 0, dot, scope)
        if pos != len(tokens):
            raise TemplateError(f"cannot parse {text!r}")
        return value

    def _pipe(self, tokens: list[str], pos: int, dot: Any, scope: dict[str, Any]) -> tuple[Any, int]:
        value: Any = None
        first = True
        while pos < len(tokens) and tokens[pos] != ")":
            args: list[Any] = []
            head = tokens[pos]
            callable_head = head in FUNCS or head == "include" or head == "tpl"
            pos += 1 if callable_head else 0
            while pos < len(tokens) and tokens[pos] not in ("|", ")"):
                arg, pos = self._operand(tokens, pos, dot, scope)
                args.append(arg)
            if not first:
                args.append(value)
            if callable_head:
                value = self.include(args[0], args[1]) if head == "include" else FUNCS[head](*args)
            elif len(args) != 1:
                raise TemplateError(f"{head!r} is not a function")
            else:
                value = args[0]
            first = False
            if pos < len(tokens) and tokens[pos] == "|":
                pos += 1
        return value, pos

    def _operand(self, tokens: list[str], pos: int, dot: Any, scope: dict[str, Any]) -> tuple[Any, int]:
        tok = tokens[pos]
        if tok == "(":
            value, pos = self._pipe(tokens, pos + 1, dot, scope)
            return value, pos + 1
        if tok[0] in '"`':
            return _unquote(tok), pos + 1
        if re.fullmatch(r"-?\d+", tok):
            return int(tok), pos + 1
        if tok in ("true", "false", "nil"):
            return {"true": True, "false": False, "nil": None}[tok], pos + 1
        if tok.startswith("."):
            return _field(dot, tok[1:]), pos + 1
        if tok.startswith("$"):
            name, _, path = tok.partition(".")
            if name not in scope:
                raise TemplateError(f"undefined variable {name}")
            return _field(scope[name], path), pos + 1
        raise TemplateError(f"unknown token {tok!r}")


def _field(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _go_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"printing a {type(value).__name__}; use toYaml")
    return str(value)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override


def render_chart(
    chart: Path, values: dict[str, Any] | None = None, release: str = "llm", namespace: str = "default"
) -> list[dict[str, Any]]:
    """`helm template release chart -n namespace --set ...` -> the manifests as dicts."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    merged = _merge(yaml.safe_load((chart / "values.yaml").read_text()), values or {})
    dot = {
        "Values": merged,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion", "")},
    }
    renderer = Renderer()
    templates = sorted((chart / "templates").glob("*"))
    for path in templates:
        if path.name.startswith("_"):
            renderer.load(path.read_text())
    docs: list[dict[str, Any]] = []
    for path in templates:
        if path.name.startswith("_") or path.suffix not in (".yaml", ".yml"):
            continue
        text = renderer.render(renderer.load(path.read_text()), dot, {"$": dot})
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs
