"""The PromQL in the rendered manifests, parsed by promql-parser (Prometheus' grammar): which
metrics each expression reads, with which label matchers, and which labels it groups by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import promql_parser
from rendered import Manifest


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # =, !=, =~ or !~
    value: str


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class Grouping:
    """Labels of a `by (...)` or `on (...)` clause and the selectors whose series it groups."""

    labels: tuple[str, ...]
    selectors: tuple[Selector, ...]


# promql-parser's MatchOp compares equal but does not hash.
_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def expressions(manifests: tuple[Manifest, ...]) -> list[tuple[str, str]]:
    """(where, PromQL) of every alerting rule and every KEDA Prometheus trigger."""
    found = []
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        if manifest["kind"] == "PrometheusRule":
            for group in manifest["spec"]["groups"]:
                for rule in group["rules"]:
                    found.append((f"{name}/{rule.get('alert') or rule['record']}", rule["expr"]))
        elif manifest["kind"] == "ScaledObject":
            for trigger in manifest["spec"]["triggers"]:
                if trigger["type"] == "prometheus":
                    found.append((f"{name}/{trigger['name']}", trigger["metadata"]["query"]))
    return found


def parse(expression: str) -> Any:
    """The syntax tree; ValueError for an expression Prometheus would refuse."""
    return promql_parser.parse(expression)


def selectors(expression: str) -> list[Selector]:
    """Every series selector, instant or range, in the order written."""
    return _selectors_in(parse(expression))


def groupings(expression: str) -> list[Grouping]:
    """Every aggregation's `by` labels and every binary operation's `on` labels."""
    found: list[Grouping] = []

    def visit(node: Any) -> None:
        if (
            isinstance(node, promql_parser.AggregateExpr)
            and node.modifier is not None
            and node.modifier.type == promql_parser.AggModifierType.By
        ):
            found.append(Grouping(tuple(node.modifier.labels), tuple(_selectors_in(node))))
        if isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            if matching is not None and matching.type == promql_parser.LabelModifierType.Include:
                found.append(Grouping(tuple(matching.labels), tuple(_selectors_in(node))))

    promql_parser.walk(parse(expression), visit)
    return found


def alternatives(pattern: str) -> list[str]:
    """The names a regex matcher such as `UNAVAILABLE|INTERNAL` lists; fails for any other
    regex, whose matches could not be checked one by one."""
    assert re.fullmatch(r"[\w:()-]+(\|[\w:()-]+)*", pattern), f"not a list of names: {pattern}"
    return pattern.split("|")


def _selectors_in(tree: Any) -> list[Selector]:
    found = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name: {node}"
            assert not node.matchers.or_matchers, f"`or` in a selector: {node}"
            matchers = tuple(
                Matcher(m.name, _op(m.op), m.value)
                for m in node.matchers.matchers
                if m.name != "__name__"
            )
            found.append(Selector(node.name, matchers))

    promql_parser.walk(tree, visit)
    return found


def _op(op: Any) -> str:
    (text,) = [text for known, text in _OPS if op == known]
    return text
