"""`inference-gateway validate`: every file the gateway reads, checked by the loaders it runs.

Each directory is checked as one configuration (what `up --config DIR` or `epp --resources DIR`
would load): resources by the EPP's manifest parser, EndpointPickerConfig documents by the
EPP's config loader, LocalFleet by `up`'s fleet parser, HTTPRoutes by the route parser. Every
error is one line, `file:line:column: object: field: reason`. Helm charts and values files
are skipped with a note: Helm renders them."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inference_gateway.api.errors import ManifestError
from inference_gateway.api.manifests import Document, manifest_files, object_label, parse_documents
from inference_gateway.envoy.httproute import parse_httproutes
from inference_gateway.local.fleet import FLEET_KIND, local_pods, parse_fleet
from inference_gateway.scheduling.config import ConfigError, load_config

PICKER_CONFIG_KIND = "EndpointPickerConfig"
_PATH = re.compile(r"^([A-Za-z_][\w-]*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*)")


@dataclass
class Parsed:
    """One YAML document with its node tree (for line:column of any field)."""

    file: Path
    node: yaml.Node
    obj: Any
    text: str = ""  # the document's own source text


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def validate_paths(paths: Iterable[Path]) -> tuple[list[str], list[str]]:
    """(error lines, summary lines) for files and directories, searched recursively."""
    report = Report()
    for path in paths:
        if not path.exists():
            report.errors.append(f"{path}: no such file or directory")
            continue
        by_dir: dict[Path, list[Parsed]] = defaultdict(list)
        for file in _files(path, report):
            by_dir[file.parent].extend(_parse_file(file, report))
        for docs in by_dir.values():
            _check_config(docs, report)
    counted = ", ".join(f"{n} {kind}" for kind, n in sorted(report.counts.items()) if n) or "nothing"
    summary = [*report.notes]
    if not report.errors:
        summary.append(f"ok: {counted}")
    return report.errors, summary


def _files(path: Path, report: Report) -> list[Path]:
    charts = {c.parent for c in path.rglob("Chart.yaml")} if path.is_dir() else set()
    for chart in sorted(charts):
        report.notes.append(f"note: skipped Helm chart {chart} (Helm renders its templates and values)")
    files = []
    for file in manifest_files(path):
        if any(chart in file.parents for chart in charts):
            continue
        files.append(file)
    return files


def _parse_file(file: Path, report: Report) -> list[Parsed]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.errors.append(f"{file}:1:1: cannot be read: {exc}")
        return []
    docs: list[Parsed] = []
    loader = yaml.SafeLoader(text) if text else None
    try:
        while loader is not None and loader.check_node():
            node = loader.get_node()
            if node is not None:
                source = text[node.start_mark.index : node.end_mark.index]
                docs.append(Parsed(file, node, loader.construct_document(node), source))
    except yaml.YAMLError as exc:
        line, column, problem = _yaml_error(exc)
        report.errors.append(f"{file}:{line}:{column}: invalid YAML: {problem}")
        return []
    finally:
        if loader is not None:
            loader.dispose()
    if docs and _is_helm_values(file, docs):
        report.notes.append(f"note: skipped {file}: a Helm values file (check it with `helm lint`)")
        return []
    if not docs:
        report.errors.append(f"{file}:1:1: empty file: no YAML document")
    return docs


def _yaml_error(exc: yaml.YAMLError) -> tuple[int, int, str]:
    # A scanner error (an unclosed quote, a key without ':') is detected on a later token;
    # its context mark is where the mistake is.
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.scanner.ScannerError) and exc.context_mark is not None:
        mark = exc.context_mark
    problem = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
    if isinstance(exc, yaml.reader.ReaderError):
        return 1, exc.position + 1, f"{exc.reason} (code point {exc.character:#x})"
    if mark is None:
        return 1, 1, problem or str(exc)
    return mark.line + 1, mark.column + 1, problem or str(exc)


def _is_helm_values(file: Path, docs: list[Parsed]) -> bool:
    no_kind = all(not (isinstance(d.obj, dict) and "kind" in d.obj) for d in docs)
    return no_kind and "values" in file.stem


def _kind(doc: Parsed) -> str:
    return str(doc.obj.get("kind", "")) if isinstance(doc.obj, dict) else ""


def _check_config(docs: list[Parsed], report: Report) -> None:
    resources = [d for d in docs if _kind(d) not in (PICKER_CONFIG_KIND, FLEET_KIND)]
    parsed = _check_resources(resources, report)
    for doc in docs:
        if _kind(doc) == PICKER_CONFIG_KIND:
            _check_picker_config(doc, report)
        elif _kind(doc) == FLEET_KIND:
            _check_fleet(doc, parsed, report)
    objects = [d.obj for d in resources if isinstance(d.obj, dict)]
    try:
        routes = parse_httproutes(objects, "config")
        report.counts["HTTPRoute rules"] += len(routes)
    except ManifestError as exc:
        _report_manifest_error(exc, [d for d in resources if _kind(d) == "HTTPRoute"], report)
    for doc in resources:
        if _kind(doc) not in ("", "HTTPRoute") and _kind(doc) not in _EPP_KINDS:
            report.counts["other objects (not read by the gateway)"] += 1


_EPP_KINDS = ("InferencePool", "InferenceModel", "InferenceObjective", "InferenceModelRewrite", "Pod")


def _check_resources(docs: list[Parsed], report: Report) -> dict[str, tuple[int, ...]]:
    """Parse with the EPP's loader; return pool name -> target ports for LocalFleet checks."""
    documents = [Document(str(d.file), d.obj, d.node.start_mark.line + 1) for d in docs]
    try:
        resources = parse_documents(documents)
    except ManifestError as exc:
        _report_manifest_error(exc, docs, report)
        return {}
    for kind, items in (
        ("pools", resources.pools),
        ("models", resources.models),
        ("objectives", resources.objectives),
        ("rewrites", resources.rewrites),
        ("pods", resources.pods),
    ):
        report.counts[kind] += len(items)
    return {p.ref.name: p.target_ports for p in resources.pools}


def _report_manifest_error(exc: ManifestError, docs: list[Parsed], report: Report) -> None:
    by_label: dict[str, list[Parsed]] = defaultdict(list)
    for d in docs:
        if isinstance(d.obj, dict):
            by_label[object_label(d.obj)].append(d)
    for problem in exc.problems:
        doc = _find(problem.source, problem.obj, by_label, docs)
        for error in problem.errors or ():
            report.errors.append(f"{_where(doc, error.path, problem.source)}: {problem.obj}: {error}")


def _find(source: str, label: str, by_label: dict[str, list[Parsed]], docs: list[Parsed]) -> Parsed | None:
    match = re.search(r": line (\d+)$", source)
    line = int(match.group(1)) if match else None
    for d in by_label.get(label, docs):
        if line is None or d.node.start_mark.line + 1 == line:
            return d
    return None


def _where(doc: Parsed | None, path: str, fallback: str) -> str:
    if doc is None:
        return fallback
    line, column = locate(doc.node, path)
    return f"{doc.file}:{line}:{column}"


def locate(node: yaml.Node, path: str) -> tuple[int, int]:
    """1-based line and column of `path` ("spec.targetModels[1].weight") in a document: the key
    of the deepest field that exists (a missing field points at its parent)."""
    mark = node.start_mark
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("[") and isinstance(node, yaml.SequenceNode):
            index = int(part[1:-1])
            if index >= len(node.value):
                break
            node = node.value[index]
            mark = node.start_mark
        elif isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                break
            mark, node = pair[0].start_mark, pair[1]
        else:
            break
    return mark.line + 1, mark.column + 1


def _check_picker_config(doc: Parsed, report: Report) -> None:
    try:
        load_config(doc.text or yaml.safe_dump(doc.obj, sort_keys=False), source="config")
    except ConfigError as exc:
        # "config: <path>: why", or "config:<line>: <path>: why" (a line of the document)
        match = re.match(r"config(?::(\d+))?: (.*)", str(exc), re.S)
        in_doc, detail = (match.group(1), match.group(2)) if match else (None, str(exc))
        path = _PATH.match(detail)
        line, column = locate(doc.node, path.group(1) if path else "")
        if path is None and in_doc is not None:
            line, column = doc.node.start_mark.line + int(in_doc), 1
        report.errors.append(f"{doc.file}:{line}:{column}: {PICKER_CONFIG_KIND}: {detail}")
        return
    report.counts["EndpointPickerConfigs"] += 1


def _check_fleet(doc: Parsed, pool_ports: dict[str, tuple[int, ...]], report: Report) -> None:
    try:
        fleet = parse_fleet([doc.obj], str(doc.file))
        pods = local_pods(fleet, pool_ports)
    except ManifestError as exc:
        for problem in exc.problems:
            for error in problem.errors:
                where = problem.obj.removeprefix(f"{FLEET_KIND} ")
                line, column = locate(doc.node, f"{where}.{error.path}" if error.path else where)
                report.errors.append(f"{doc.file}:{line}:{column}: {FLEET_KIND} {where}: {error}")
        return
    except (TypeError, ValueError) as exc:
        line, column = locate(doc.node, "spec")
        report.errors.append(f"{doc.file}:{line}:{column}: {FLEET_KIND}: {exc}")
        return
    report.counts["simulated pods"] += len(pods)
