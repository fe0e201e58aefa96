"""A JSON schema rewritten into the subset llama.cpp's converter turns into an exact grammar.

llama-cpp-python's ``SchemaConverter`` silently ignores keywords it does not know
(``minimum``, ``uniqueItems``, ``not``, most formats, ...), so a grammar made from the raw
schema could produce replies that do not validate. ``normalise`` walks the schema first:
it keeps what the grammar can guarantee, rewrites what it can express another way
(``allOf`` merged, type lists as ``anyOf``, bounds and formats as GBNF rules of their own
under the private key ``x-gbnf``), drops pure annotations, and refuses everything else
with ``SchemaRefused``, which names the JSON pointer and the keyword. The grammar may
allow less than the schema (never an extra property, say); it never allows more.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelyard.engines.llamacpp.formats import UnsupportedBound, format_rule, number_rule

# Keywords that assert something a grammar cannot promise here; a schema using them is
# refused rather than answered with replies that may not validate.
REFUSED = frozenset(
    {
        "not", "if", "then", "else", "dependencies", "dependentRequired",
        "dependentSchemas", "patternProperties", "propertyNames", "contains",
        "minContains", "maxContains", "$dynamicRef", "$recursiveRef", "multipleOf",
    }
)  # fmt: skip
# Keywords that only describe; dropped (a validator ignores them too).
ANNOTATIONS = frozenset(
    {
        "title", "description", "default", "examples", "example", "$schema", "$id",
        "$comment", "$anchor", "deprecated", "readOnly", "writeOnly", "nullable",
        "discriminator", "xml", "externalDocs", "markdownDescription", "strict",
        "$defs", "definitions", "additionalItems", "unevaluatedItems", "contentMediaType",
        "contentEncoding", "$dynamicAnchor", "$recursiveAnchor", "$vocabulary",
    }
)  # fmt: skip
# Any JSON value but arrays (a subset is valid): the converter's reading of ``{}`` is "object".
ANY_VALUE = {"anyOf": [{"type": t} for t in ("string", "number", "boolean", "null", "object")]}
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
DEPTH_LIMIT = 64  # nested allOf/$ref inlining deeper than this is refused, not recursed


class SchemaRefused(ValueError):
    """A part of the schema the grammar cannot guarantee; ``pointer`` is its JSON pointer."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer or "/"
        self.reason = message


def normalise(root: Any) -> dict[str, Any]:
    """The converter-ready copy of ``root``, definitions included (``$ref``s keep working)."""
    walker = _Walker(root)
    out = walker.walk(root, "", 0)
    if isinstance(root, dict):
        for container in ("$defs", "definitions"):
            defs = root.get(container)
            if isinstance(defs, dict):
                out[container] = {
                    key: walker.walk(value, f"/{container}/{_escape(key)}", 0)
                    for key, value in defs.items()
                }
    return out


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class _Walker:
    def __init__(self, root: Any) -> None:
        self.root = root

    def walk(self, node: Any, at: str, depth: int) -> dict[str, Any]:
        if depth > DEPTH_LIMIT:
            raise SchemaRefused(at, "nesting of allOf/$ref is too deep")
        if node is True or node == {}:
            return {}
        if node is False:
            raise SchemaRefused(at, "the schema `false` matches nothing")
        if not isinstance(node, dict):
            raise SchemaRefused(at, f"a schema must be an object, not {type(node).__name__}")
        for keyword in node:
            if keyword in REFUSED:
                raise SchemaRefused(f"{at}/{keyword}", f"`{keyword}` is not supported")
        if "$ref" in node:
            return self._ref(node, at, depth)
        if "allOf" in node:
            return self.walk(self._merge_all(node, at, depth), at, depth + 1)
        if "anyOf" in node or "oneOf" in node:
            return self._union(node, at, depth)
        if "const" in node or "enum" in node:
            return _constants(node, at)
        types = node.get("type")
        if isinstance(types, list):
            if not types:
                raise SchemaRefused(f"{at}/type", "an empty type list matches nothing")
            if len(types) == 1:
                return self.walk({**node, "type": types[0]}, at, depth)
            branches = [self.walk({**node, "type": t}, at, depth) for t in types]
            return {"anyOf": branches}
        return self._typed(node, _type_of(node, at), at, depth)

    def _ref(self, node: dict[str, Any], at: str, depth: int) -> dict[str, Any]:
        ref = node["$ref"]
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise SchemaRefused(f"{at}/$ref", f"only local references (#/...) work: {ref!r}")
        self.resolve(ref, at)  # refuses a dangling reference now
        rest = {k: v for k, v in node.items() if k != "$ref" and k not in ANNOTATIONS}
        if not rest:
            return {"$ref": ref}
        # Siblings of $ref assert too (2019-09 on): merged with the target as allOf.
        merged = {"allOf": [{"$ref": ref}, rest]}
        return self.walk(merged, at, depth + 1)

    def resolve(self, ref: str, at: str) -> Any:
        target = self.root
        for part in ref[2:].split("/") if ref != "#" else []:
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            elif isinstance(target, dict) and key in target:
                target = target[key]
            else:
                raise SchemaRefused(f"{at}/$ref", f"{ref!r} points at nothing")
        return target

    def _merge_all(self, node: dict[str, Any], at: str, depth: int) -> dict[str, Any]:
        """``allOf`` as one schema: the parts' keywords together, conflicts refused."""
        merged = {k: v for k, v in node.items() if k != "allOf"}
        parts = node["allOf"]
        if not isinstance(parts, list):
            raise SchemaRefused(f"{at}/allOf", "allOf must be a list")
        for index, part in enumerate(parts):
            where = f"{at}/allOf/{index}"
            part = self._inline(part, where, depth)
            merged = _merge(merged, part, where)
        return merged

    def _inline(self, part: Any, at: str, depth: int) -> dict[str, Any]:
        for _ in range(DEPTH_LIMIT):
            if part is True:
                return {}
            if not isinstance(part, dict):
                raise SchemaRefused(at, "allOf parts must be schema objects")
            if "$ref" not in part:
                return part
            target = self.resolve(part["$ref"], at)
            rest = {k: v for k, v in part.items() if k != "$ref"}
            part = _merge(target if isinstance(target, dict) else {}, rest, at)
        raise SchemaRefused(at, "$ref chain is too long")

    def _union(self, node: dict[str, Any], at: str, depth: int) -> dict[str, Any]:
        keyword = "anyOf" if "anyOf" in node else "oneOf"
        if "anyOf" in node and "oneOf" in node:
            raise SchemaRefused(at, "anyOf together with oneOf is not supported")
        branches = node[keyword]
        if not isinstance(branches, list) or not branches:
            raise SchemaRefused(f"{at}/{keyword}", f"{keyword} needs a non-empty list")
        rest = {k: v for k, v in node.items() if k != keyword and k not in ANNOTATIONS}
        out = []
        for index, branch in enumerate(branches):
            where = f"{at}/{keyword}/{index}"
            if rest:  # siblings apply to every branch: each branch is their allOf
                branch = _merge(rest, self._inline(branch, where, depth), where)
            out.append(self.walk(branch, where, depth + 1))
        if keyword == "oneOf":
            _check_exclusive([self._inline(b, at, depth) for b in out], f"{at}/oneOf")
        return {"anyOf": out}

    def _typed(self, node: dict[str, Any], kind: str | None, at: str, depth: int) -> dict[str, Any]:
        if kind == "object":
            return self._object(node, at, depth)
        if kind == "array":
            return self._array(node, at, depth)
        if kind == "string":
            return _string(node, at)
        if kind in ("number", "integer"):
            try:
                rule = number_rule(node, kind == "integer")
            except UnsupportedBound as error:
                raise SchemaRefused(f"{at}/{error.args[0]}", error.args[1]) from error
            return {"x-gbnf": rule, "x-type": kind}
        if kind in ("boolean", "null"):
            return {"type": kind}
        return {}  # no type and nothing that asserts: any value

    def _object(self, node: dict[str, Any], at: str, depth: int) -> dict[str, Any]:
        properties = node.get("properties", {})
        required = node.get("required", [])
        extra = node.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise SchemaRefused(at, "properties must be an object and required a list")
        out = {
            name: self.walk(schema, f"{at}/properties/{_escape(name)}", depth + 1)
            for name, schema in properties.items()
        }
        for name in required:
            if name not in out:
                if extra is False:
                    raise SchemaRefused(f"{at}/required", f"{name!r} is required but forbidden")
                where = f"{at}/additionalProperties"
                out[name] = self.walk({} if extra is True else extra, where, depth + 1)
        unevaluated = node.get("unevaluatedProperties", False)
        if unevaluated is not False and not properties and extra is True:
            extra = unevaluated  # the only place left for arbitrary keys
        _check_counts(node, len(required), len(out), extra, at)
        if out:  # only declared properties are produced: valid whatever extra allows
            return {"type": "object", "properties": out, "required": list(required)}
        if extra is True or extra == {}:
            return {"type": "object"}
        if extra is False:
            return {"type": "object", "additionalProperties": False}
        values = self.walk(extra, f"{at}/additionalProperties", depth + 1)
        return {"type": "object", "additionalProperties": values}

    def _array(self, node: dict[str, Any], at: str, depth: int) -> dict[str, Any]:
        if node.get("uniqueItems") is True and node.get("maxItems") != 1:
            raise SchemaRefused(f"{at}/uniqueItems", "uniqueItems is not supported")
        tuple_items = node.get("prefixItems", node.get("items"))
        low, high = node.get("minItems", 0), node.get("maxItems")
        if isinstance(tuple_items, list):
            if low > len(tuple_items) or (high is not None and high < len(tuple_items)):
                raise SchemaRefused(at, "minItems/maxItems differ from the tuple's length")
            where = f"{at}/{'prefixItems' if 'prefixItems' in node else 'items'}"
            items = [self.walk(s, f"{where}/{i}", depth + 1) for i, s in enumerate(tuple_items)]
            if not items:
                return {"x-gbnf": '"[" space "]" space'}
            return {"type": "array", "prefixItems": items}
        item = node.get("items", True)
        if item is False:
            if low > 0:
                raise SchemaRefused(f"{at}/items", "items false with minItems > 0")
            return {"x-gbnf": '"[" space "]" space'}
        walked = self.walk(item, f"{at}/items", depth) or ANY_VALUE  # {} reads as "no items"
        out: dict[str, Any] = {"type": "array", "items": walked}
        if low:
            out["minItems"] = low
        if high is not None:
            out["maxItems"] = high
        return out


def _type_of(node: dict[str, Any], at: str) -> str | None:
    kind = node.get("type")
    if kind is not None:
        if kind not in TYPES:
            raise SchemaRefused(f"{at}/type", f"unknown type {kind!r}")
        return str(kind)
    # No type: a keyword of one type says which values to produce (others are valid too).
    for keywords, implied in (
        (("properties", "required", "additionalProperties", "unevaluatedProperties"), "object"),
        (("items", "prefixItems", "minItems", "maxItems"), "array"),
        (("pattern", "format", "minLength", "maxLength"), "string"),
        (("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"), "number"),
    ):
        if any(k in node for k in keywords):
            return implied
    return None


def _constants(node: dict[str, Any], at: str) -> dict[str, Any]:
    values = [node["const"]] if "const" in node else node["enum"]
    if not isinstance(values, list):
        raise SchemaRefused(f"{at}/enum", "enum must be a list")
    types = node.get("type")
    allowed = [types] if isinstance(types, str) else types
    if allowed is not None:
        values = [v for v in values if _json_type(v) in allowed or _is_int_number(v, allowed)]
    if "const" in node and "enum" in node:
        values = [v for v in values if v in node["enum"]]
    if not values:
        raise SchemaRefused(at, "no enum/const value has the schema's type")
    return {"enum": values}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _is_int_number(value: Any, allowed: list[str]) -> bool:
    kind = _json_type(value)
    return (kind == "integer" and "number" in allowed) or (
        kind == "number" and "integer" in allowed and float(value).is_integer()
    )


def _string(node: dict[str, Any], at: str) -> dict[str, Any]:
    lengths: dict[str, Any] = {k: node[k] for k in ("minLength", "maxLength") if k in node}
    if "pattern" in node:
        if "format" in node or lengths:
            raise SchemaRefused(at, "pattern together with format or lengths is not supported")
        return {"type": "string", "pattern": _anchored(node["pattern"], f"{at}/pattern")}
    if "format" in node:
        rule = format_rule(node["format"])
        if rule is None:
            raise SchemaRefused(f"{at}/format", f"format {node['format']!r} is not supported")
        if lengths:
            raise SchemaRefused(at, "format together with minLength/maxLength is not supported")
        return {"x-gbnf": rule}
    return {"type": "string", **lengths}


def _anchored(pattern: Any, at: str) -> str:
    """The pattern as the converter wants it (``^...$``, no ``\\d``/``\\w``); a match of the
    whole string also matches the unanchored search JSON Schema does."""
    if not isinstance(pattern, str):
        raise SchemaRefused(at, "pattern must be a string")
    core = pattern.removeprefix("^")
    if core.endswith("$") and not core.endswith("\\$"):
        core = core[:-1]
    # Outside a class, the two shorthands become classes the converter knows.
    core = re.sub(r"\\d(?![^\[]*\])", "[0-9]", core)
    core = re.sub(r"\\w(?![^\[]*\])", "[a-zA-Z0-9_]", core)
    # An escaped literal outside a class becomes a one-character class (llama.cpp's GBNF
    # knows no `\\.` escape in a literal).
    core = re.sub(r"\\([.\-/+*?(){}|$])(?![^\[]*\])", r"[\1]", core)
    # Anything else escaped (\\s, a quote, ...) or `.`/`[^` could produce a quote, a
    # backslash or a control character inside the JSON string: refused.
    if re.search(r"\\[^.\-/+*?()\[\]{}|^$]|[\"^]|(?<![\[\\])\.", core):
        raise SchemaRefused(at, f"pattern {pattern!r}: only literals, classes, groups, "
                                "alternatives and quantifiers are supported")  # fmt: skip
    return f"^({core})$"


def _check_counts(node: dict[str, Any], required: int, declared: int, extra: Any, at: str) -> None:
    low, high = node.get("minProperties", 0), node.get("maxProperties")
    if low > required:
        raise SchemaRefused(f"{at}/minProperties", "minProperties above the required count")
    if high is not None and (declared > high or (not declared and extra is not False)):
        raise SchemaRefused(f"{at}/maxProperties", "maxProperties is not supported")


def _merge(base: dict[str, Any], part: dict[str, Any], at: str) -> dict[str, Any]:
    """Two schemas that must both hold, as one; a keyword set differently in both is refused
    (properties and required are combined)."""
    out = dict(base)
    for key, value in part.items():
        if key in ANNOTATIONS or key not in out or out[key] == value:
            out.setdefault(key, value)
        elif key == "properties" and isinstance(value, dict):
            props = dict(out[key])
            for name, schema in value.items():
                props[name] = schema if name not in props else {"allOf": [props[name], schema]}
            out[key] = props
        elif key == "required" and isinstance(value, list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "allOf" and isinstance(value, list):
            out[key] = [*out[key], *value]
        else:
            raise SchemaRefused(f"{at}/{key}", f"`{key}` conflicts with another allOf part")
    return out


def _check_exclusive(branches: list[dict[str, Any]], at: str) -> None:
    """``oneOf`` is produced as ``anyOf``: exact only when no reply can match two branches.
    Accepted when the branches' types differ, or their constants do."""
    seen: list[tuple[set[str], set[str] | None]] = []
    for index, branch in enumerate(branches):
        kinds = _kinds(branch)
        if kinds is None or any(_overlap(kinds, other) for other in seen):
            raise SchemaRefused(
                f"{at}/{index}", "oneOf branches that may overlap are not supported"
            )
        seen.append(kinds)


def _kinds(branch: dict[str, Any]) -> tuple[set[str], set[str] | None] | None:
    """The JSON types a normalised branch produces and, for constants, its values
    (None: it cannot be told apart)."""
    if "enum" in branch:
        values = {json.dumps(v, sort_keys=True) for v in branch["enum"]}
        return {_widen(_json_type(v)) for v in branch["enum"]}, values
    kind = branch.get("type", branch.get("x-type"))
    if not isinstance(kind, str) or "anyOf" in branch:
        return None
    return {_widen(kind)}, None


def _widen(kind: str) -> str:
    return "number" if kind == "integer" else kind


def _overlap(
    one: tuple[set[str], set[str] | None], other: tuple[set[str], set[str] | None]
) -> bool:
    if not one[0] & other[0]:
        return False
    return one[1] is None or other[1] is None or bool(one[1] & other[1])
