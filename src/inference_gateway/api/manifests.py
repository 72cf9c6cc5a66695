"""Parse Kubernetes-style manifests (YAML documents, or dicts from the API) into the gateway's types.

Every problem is reported at once, one line per field: which file (and line), which object,
which field, and why. Kinds the gateway does not know (Service, Deployment, LocalFleet, ...) are
kept untouched in `ResourceSet.other`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inference_gateway.api.errors import FieldError, ManifestError
from inference_gateway.api.parsers import (
    parse_model,
    parse_objective,
    parse_pod,
    parse_pool,
    parse_rewrite,
)
from inference_gateway.api.types import (
    POOL_V1,
    X_V1ALPHA2,
    InferenceModel,
    InferenceModelRewrite,
    InferenceObjective,
    InferencePool,
    Pod,
)

__all__ = [
    "SUPPORTED_VERSIONS",
    "ResourceSet",
    "load_path",
    "load_yaml_documents",
    "object_label",
    "parse_model",
    "parse_objective",
    "parse_objects",
    "parse_pod",
    "parse_pool",
    "parse_rewrite",
    "parse_yaml",
]

# kind -> the apiVersions the gateway reads for it
SUPPORTED_VERSIONS: dict[str, tuple[str, ...]] = {
    "InferencePool": (POOL_V1, X_V1ALPHA2),
    "InferenceModel": (X_V1ALPHA2,),
    "InferenceObjective": (X_V1ALPHA2,),
    "InferenceModelRewrite": (X_V1ALPHA2,),
    "Pod": ("v1",),
}

_PARSERS: dict[str, tuple[Callable[..., Any], str]] = {
    "InferencePool": (parse_pool, "pools"),
    "InferenceModel": (parse_model, "models"),
    "InferenceObjective": (parse_objective, "objectives"),
    "InferenceModelRewrite": (parse_rewrite, "rewrites"),
    "Pod": (parse_pod, "pods"),
}


@dataclass
class ResourceSet:
    pools: list[InferencePool] = field(default_factory=list)
    models: list[InferenceModel] = field(default_factory=list)
    objectives: list[InferenceObjective] = field(default_factory=list)
    rewrites: list[InferenceModelRewrite] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: ResourceSet) -> None:
        self.pools += other.pools
        self.models += other.models
        self.objectives += other.objectives
        self.rewrites += other.rewrites
        self.pods += other.pods
        self.other += other.other

    def summary(self) -> str:
        return (
            f"{len(self.pools)} pools, {len(self.models)} models, {len(self.objectives)} objectives, "
            f"{len(self.rewrites)} rewrites, {len(self.pods)} pods"
        )


@dataclass(frozen=True)
class Document:
    """One YAML document (or API object) and where it came from."""

    source: str
    obj: Any
    line: int = 0

    @property
    def where(self) -> str:
        """How errors name the place: "models.yaml: line 12", or just the source."""
        return f"{self.source}: line {self.line}" if self.line else self.source


def object_label(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name", "<unnamed>") if isinstance(meta, dict) else "<unnamed>"
    ns = meta.get("namespace", "default") if isinstance(meta, dict) else "default"
    return f"{obj.get('kind', '<no kind>')} {ns}/{name}"


def _version_error(obj: dict[str, Any], kind: str) -> FieldError | None:
    version = obj.get("apiVersion")
    if version in SUPPORTED_VERSIONS[kind]:
        return None
    if version is None:
        return FieldError("apiVersion", f"is required (use {SUPPORTED_VERSIONS[kind][0]})")
    return FieldError(
        "apiVersion", f"{version!r} is not supported for {kind}; use {' or '.join(SUPPORTED_VERSIONS[kind])}"
    )


def _parse_document(doc: Document, out: ResourceSet, problems: list[ManifestError]) -> None:
    obj = doc.obj
    if obj is None:
        return
    if not isinstance(obj, dict):
        problems.append(ManifestError(doc.where, "document", [FieldError("", "is not a YAML mapping")]))
        return
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        problems.append(ManifestError(doc.where, object_label(obj), [FieldError("kind", "is required")]))
        return
    if kind not in _PARSERS:
        out.other.append(obj)
        return
    version_error = _version_error(obj, kind)
    if version_error is not None:
        problems.append(ManifestError(doc.where, object_label(obj), [version_error]))
        return
    parser, bucket = _PARSERS[kind]
    parsed, reader = parser(obj)
    if reader.errors:
        problems.append(ManifestError(doc.where, object_label(obj), reader.errors))
        return
    getattr(out, bucket).append(parsed)


def parse_documents(docs: Iterable[Document]) -> ResourceSet:
    """Parse documents; raise one ManifestError naming every invalid object and duplicate."""
    out = ResourceSet()
    problems: list[ManifestError] = []
    seen: dict[tuple[str, str, str], str] = {}
    for doc in docs:
        before = _count(out)
        _parse_document(doc, out, problems)
        if _count(out) != before:
            _check_duplicate(doc, seen, problems)
    if problems:
        raise ManifestError.combine(problems)
    return out


def _count(rs: ResourceSet) -> int:
    return len(rs.pools) + len(rs.models) + len(rs.objectives) + len(rs.rewrites) + len(rs.pods)


def _check_duplicate(
    doc: Document, seen: dict[tuple[str, str, str], str], problems: list[ManifestError]
) -> None:
    meta = doc.obj.get("metadata") or {}
    key = (str(doc.obj["kind"]), str(meta.get("namespace", "default")), str(meta.get("name")))
    if key in seen:
        problems.append(
            ManifestError(
                doc.where,
                object_label(doc.obj),
                [FieldError("metadata.name", f"is defined twice; first definition at {seen[key]}")],
            )
        )
    else:
        seen[key] = doc.where


def parse_objects(objects: Iterable[Any], source: str) -> ResourceSet:
    """Parse already-decoded objects (from one file, or from the Kubernetes API)."""
    return parse_documents(Document(source, obj) for obj in objects)


def yaml_documents(text: str, source: str) -> Iterator[Document]:
    """Decode a multi-document YAML text, labelling each document with its first line."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # rejects unprintable characters right away
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else 0
            yield Document(source, loader.construct_document(node), line)
    except yaml.YAMLError as exc:
        raise ManifestError(source, "YAML", [FieldError("", _yaml_problem(exc))]) from exc
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.scanner.ScannerError) and exc.context_mark is not None:
        mark = exc.context_mark  # detected on a later token; the context is where the mistake is
    if isinstance(exc, yaml.reader.ReaderError):
        return f"invalid YAML at character {exc.position}: {exc.reason} (code point {exc.character:#x})"
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
    problem = getattr(exc, "problem", None) or str(exc)
    return f"invalid YAML at {where}: {problem}"


def load_yaml_documents(text: str, source: str) -> Iterator[Any]:
    for doc in yaml_documents(text, source):
        yield doc.obj


def parse_yaml(text: str, source: str) -> ResourceSet:
    return parse_documents(list(yaml_documents(text, source)))


def manifest_files(path: Path) -> list[Path]:
    """The YAML files under `path` (recursively, sorted), or `path` itself when it is a file."""
    if not path.is_dir():
        return [path]
    # Hidden entries are skipped, which also skips the `..data` copies in a mounted ConfigMap.
    return sorted(
        p
        for p in path.rglob("*")
        if p.suffix in (".yaml", ".yml")
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def load_path(path: Path | str) -> ResourceSet:
    """Load a YAML file or a directory of them; raise ManifestError listing every problem."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(str(path), "path", [FieldError("", "does not exist")])
    docs: list[Document] = []
    problems: list[ManifestError] = []
    for file in manifest_files(path):
        try:
            docs.extend(yaml_documents(file.read_text(encoding="utf-8"), str(file)))
        except ManifestError as exc:
            problems.append(exc)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ManifestError(str(file), "file", [FieldError("", f"cannot be read: {exc}")]))
    try:
        resources = parse_documents(docs)
    except ManifestError as exc:
        problems.append(exc)
    if problems:
        raise ManifestError.combine(problems)
    return resources
