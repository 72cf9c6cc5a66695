"""A fast Prometheus text parser that reads only the families it is asked for.

A vLLM /metrics page is mostly histogram buckets the scheduler never looks at. Instead of
walking every line in Python, each wanted family is located with `str.find` (C speed) and
only its own lines are parsed. bench/micro.py (the overhead scenario) compares it with a full
`prometheus_client` parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class Sample:
    labels: dict[str, str]
    value: float


# One `key="value"` pair; values may contain escaped quotes.
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}


def parse_families(text: str, wanted: Iterable[str]) -> dict[str, list[Sample]]:
    """Samples of each wanted family present in `text` (families with no sample are absent)."""
    out: dict[str, list[Sample]] = {}
    for name in wanted:
        samples = family_samples(text, name)
        if samples:
            out[name] = samples
    return out


def family_samples(text: str, name: str) -> list[Sample]:
    """The samples of one family.

    The exposition format requires a family's lines to form one group, so parsing stops at the
    first line after the group; only an absent family costs a scan of the whole page.
    """
    samples: list[Sample] = []
    if text.startswith(name) and text[len(name) : len(name) + 1] in ("{", " ", "\t"):
        start = 0
    else:
        start = _line_start(text, name, 0)
        if start < 0:
            return samples
    size = len(text)
    skip = len(name)
    while True:
        end = text.find("\n", start)
        if end < 0:
            end = size
        sample = _parse_sample(text, start + skip, end)
        if sample is not None:
            samples.append(sample)
        start = end + 1
        if not (text.startswith(name, start) and text[start + skip : start + skip + 1] in ("{", " ", "\t")):
            return samples


def histogram_sums_and_counts(text: str, base: str) -> tuple[list[Sample], list[Sample]]:
    """The `_sum` and `_count` samples of histogram family `base`.

    A histogram's series interleave (each series' buckets, then its sum and count), so both are
    looked for across the family's whole block: from its first line to the next `# ` comment
    line (the next family's HELP or TYPE), or to the end of the page.
    """
    if text.startswith(base + "_"):
        text = "\n" + text  # rare: the family opens the page; its first line gets a newline too
    first = text.find("\n" + base + "_")
    if first < 0:
        return [], []
    end = text.find("\n# ", first + 1)
    if end < 0:
        end = len(text)
    return _samples_in(text, base + "_sum", first, end), _samples_in(text, base + "_count", first, end)


def _samples_in(text: str, name: str, begin: int, end: int) -> list[Sample]:
    """Samples of `name` on the lines that start in [begin, end) (`begin` is a newline)."""
    samples: list[Sample] = []
    needle = "\n" + name
    pos = text.find(needle, begin, end)
    while pos >= 0:
        after = pos + len(needle)
        line_end = text.find("\n", after)
        if line_end < 0:
            line_end = len(text)
        if text[after : after + 1] in ("{", " ", "\t"):
            sample = _parse_sample(text, after, line_end)
            if sample is not None:
                samples.append(sample)
        pos = text.find(needle, line_end, end)
    return samples


def _line_start(text: str, name: str, begin: int) -> int:
    """Index of the first line that is a sample of `name` (not a longer name), or -1."""
    needle = "\n" + name
    pos = text.find(needle, begin)
    while pos >= 0:
        after = pos + len(needle)
        if text[after : after + 1] in ("{", " ", "\t"):
            return pos + 1
        pos = text.find(needle, after)
    return -1


def _parse_sample(text: str, start: int, end: int) -> Sample | None:
    labels: dict[str, str] = {}
    if text[start] == "{":
        # The value and timestamp never contain "}", so the last one closes the label block.
        close = text.rfind("}", start, end)
        if close < 0:
            return None
        body = text[start + 1 : close]
        parsed = _parse_labels_fast(body)
        labels = parsed if parsed is not None else _parse_labels(body)
        start = close + 1
    parts = text[start:end].split()
    if not parts:
        return None
    try:
        return Sample(labels, float(parts[0]))
    except ValueError:
        return None


def _parse_labels_fast(body: str) -> dict[str, str] | None:
    """Plain `k="v",k2="v2"` blocks (no escapes) without regex; None means use the slow path."""
    body = body.strip().rstrip(",").rstrip()
    if not body:
        return {}
    if "\\" in body or body[-1] != '"':
        return None
    labels: dict[str, str] = {}
    for part in body[:-1].split('",'):
        key, sep, value = part.partition('="')
        if not sep:
            return None
        labels[key.strip()] = value
    return labels


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
