"""A hardened YAML reader for configuration files: duplicate keys, alias bombs and absurd
nesting are refused with a YAML error naming the line, like any other syntax error.

It never executes tags (safe loader only) and never returns a partially read document.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_DEPTH", "MAX_VALUES", "ConfigYamlError", "load_yaml"]

MAX_VALUES = 100_000  # values after alias expansion; a real vigie.yaml has a few hundred
MAX_DEPTH = 64  # nesting levels; a real vigie.yaml has fewer than ten


class ConfigYamlError(yaml.MarkedYAMLError):
    """A document PyYAML would accept but Vigie refuses (carries `problem` and a mark)."""

    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                continue  # an unhashable key: PyYAML reports it itself
            if first != key_node.start_mark.line + 1:
                raise ConfigYamlError(
                    f"key {key!r} is given twice (first on line {first}); keep only one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _check_shape(root: Node) -> None:
    """Refuse documents whose alias expansion or nesting is out of all proportion."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, expanded = stack.pop()
        if id(node) in sizes:
            continue
        if depth > MAX_DEPTH:
            raise ConfigYamlError(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        if isinstance(node, ScalarNode) or expanded or not children:
            total = 1 + sum(sizes.get(id(child), 1) for child in children)
            if total > MAX_VALUES:
                raise ConfigYamlError(
                    f"the document expands to more than {MAX_VALUES} values (aliases used as "
                    "a 'billion laughs' bomb?)",
                    node.start_mark,
                )
            sizes[id(node)] = total
            continue
        stack.append((node, depth, True))
        stack += [(child, depth + 1, False) for child in children if id(child) not in sizes]


def load_yaml(text: str) -> Any:
    """Parse one YAML document like `yaml.safe_load`, with the refusals above.

    Raises `yaml.YAMLError` (a `ConfigYamlError` for Vigie's own refusals).
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_shape(node)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigYamlError(f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
