"""A fast Prometheus text parser that reads only the families it is asked for.

A vLLM /metrics page is mostly histogram buckets the scheduler never looks at. Instead of
walking every line, each wanted family is located with `str.find` (C speed) on
"\\n<name>", and only those lines are parsed. See bench/scheduling_bench.py for the
comparison with a full `prometheus_client` parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class Sample:
    labels: dict[str, str]
    value: float


# `{labels} value [timestamp]`; label values may contain escaped quotes and braces.
_LABEL_BLOCK = re.compile(r'\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\}')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}


def parse_families(text: str, wanted: Iterable[str]) -> dict[str, list[Sample]]:
    """Samples of each wanted family present in `text` (families with no sample are absent)."""
    out: dict[str, list[Sample]] = {}
    for name in wanted:
        samples = _family_samples(text, name)
        if samples:
            out[name] = samples
    return out


def _family_samples(text: str, name: str) -> list[Sample]:
    samples: list[Sample] = []
    size = len(text)
    needle = "\n" + name
    skip = len(needle)
    # `pos` is the index of the newline before a candidate line; -1 for the very first line.
    pos = -1 if text.startswith(name) else text.find(needle)
    if pos < 0 and not text.startswith(name):
        return samples
    while True:
        start = pos + skip
        if start < size and text[start] in "{ \t":
            end = text.find("\n", start)
            if end < 0:
                end = size
            sample = _parse_sample(text, start, end)
            if sample is not None:
                samples.append(sample)
        else:
            end = start
        pos = text.find(needle, end)
        if pos < 0:
            break
    return samples


def _parse_sample(text: str, start: int, end: int) -> Sample | None:
    labels: dict[str, str] = {}
    if text[start] == "{":
        block = _LABEL_BLOCK.match(text, start, end)
        if block is None:
            return None
        labels = _parse_labels(block.group(1))
        start = block.end()
    parts = text[start:end].split()
    if not parts:
        return None
    try:
        return Sample(labels, float(parts[0]))
    except ValueError:
        return None


def _parse_labels(body: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, value in _LABEL.findall(body):
        labels[key] = _unescape(value) if "\\" in value else value
    return labels


def _unescape(value: str) -> str:
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch == "\\" and i + 1 < n:
            i += 1
            out.append(_ESCAPES.get(value[i], "\\" + value[i]))
        else:
            out.append(ch)
        i += 1
    return "".join(out)
