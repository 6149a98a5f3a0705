"""YAML from users, read with the safe loader and bounded: a document nested deeper than
``MAX_YAML_DEPTH`` levels, or larger than ``MAX_YAML_NODES`` nodes once its aliases are
expanded ("billion laughs"), is refused before it is built, so no later step (validation,
hashing, messages) can be made to recurse or expand without end.
"""

from __future__ import annotations

from typing import Any

import yaml

from embsim.limits import MAX_YAML_DEPTH, MAX_YAML_NODES


class YamlTooLarge(ValueError):
    """The document exceeds a nesting or expanded-size limit (the message says which)."""


TOO_DEEP = f"is nested too deep (more than {MAX_YAML_DEPTH} levels)"


def load_bounded(text: str) -> Any:
    """The Python value of one YAML document (safe tags only). Raises ``yaml.YAMLError`` for
    malformed YAML and ``YamlTooLarge`` past a limit (also when the parser, which recurses,
    runs out of stack first)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_shape(node)
        return loader.construct_document(node)
    except RecursionError:
        raise YamlTooLarge(TOO_DEEP) from None
    finally:
        loader.dispose()


def _check_shape(root: yaml.Node) -> None:
    """Depth and expanded node count of the node graph, each node visited once (an alias is
    the same node object as its anchor, counted as often as it is used)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()         # nodes whose children are still being measured
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in size:
            continue
        children = _children(node)
        if not children_done:
            if key in open_:
                raise YamlTooLarge("has an alias inside the collection it names")
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in size)
            continue
        open_.discard(key)
        size[key] = 1 + sum(size[id(child)] for child in children)
        depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
        if depth[key] > MAX_YAML_DEPTH:
            raise YamlTooLarge(TOO_DEEP)
        if size[key] > MAX_YAML_NODES:
            raise YamlTooLarge(f"holds more than {MAX_YAML_NODES} values once its aliases "
                               "are expanded")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
