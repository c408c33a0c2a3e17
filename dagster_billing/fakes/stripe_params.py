"""Stripe request parameters: decoding form bodies and checking them against Stripe's own types.

stripe-python ships one TypedDict per endpoint, "generated from our OpenAPI spec" for the API
version the SDK pins (e.g. stripe/params/_invoice_item_create_params.py). At runtime the SDK does
not check them; this module does, on the server side: unknown parameters, required parameters,
integers (amounts in minor units), booleans, enums and nested objects. Errors use Stripe's codes
(parameter_unknown, parameter_missing, parameter_invalid_integer, parameter_invalid_string,
invalid_request_error; https://docs.stripe.com/error-codes).
"""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ForwardRef, Literal, NotRequired, Required, Union, get_args, get_origin
from urllib.parse import parse_qsl

import typing_extensions
from stripe._request_options import RequestOptions

_REQUEST_OPTION_KEYS = set(RequestOptions.__annotations__)
_INTEGER = re.compile(r"^-?\d+$")
_BRACKETS = re.compile(r"\[([^\]]*)\]")


class ParamError(Exception):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def decode_form(body: str) -> dict[str, Any]:
    """`a[b][c]=1&l[0]=x&l[1]=y&m[]=z` -> {"a": {"b": {"c": "1"}}, "l": ["x", "y"], "m": ["z"]}
    (Stripe's bracket encoding, as stripe-python's _encode_nested_dict writes it)."""
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        head = raw_key.split("[", 1)[0]
        parts = [head, *_BRACKETS.findall(raw_key[len(head) :])]
        node: Any = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            next_is_list = not last and (parts[index + 1] == "" or parts[index + 1].isdigit())
            if isinstance(node, list):
                position = len(node) if part == "" else int(part)
                while len(node) <= position:
                    node.append(None)
                if last:
                    node[position] = value
                else:
                    if node[position] is None:
                        node[position] = [] if next_is_list else {}
                    node = node[position]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if next_is_list else {})
    return result


def _resolve(annotation: Any, module: str) -> Any:
    if isinstance(annotation, str):
        annotation = ForwardRef(annotation)
    if isinstance(annotation, ForwardRef):
        return eval(annotation.__forward_arg__, vars(sys.modules[module]))  # SDK's own type text
    return annotation


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) in (NotRequired, Required):
        annotation = get_args(annotation)[0]
    return annotation


def _is_typeddict(annotation: Any) -> bool:
    return isinstance(annotation, type) and typing_extensions.is_typeddict(annotation)


def validate(params: Mapping[str, Any], schema: type, *, path: str = "") -> None:
    """Check decoded form values (all strings) against a stripe-python params TypedDict."""
    hints = {k: v for k, v in schema.__annotations__.items() if k not in _REQUEST_OPTION_KEYS}
    required = set(getattr(schema, "__required_keys__", set())) - _REQUEST_OPTION_KEYS
    for name in params:
        if name not in hints:
            raise ParamError(
                "parameter_unknown", f"Received unknown parameter: {path}{name}", f"{path}{name}"
            )
    for name in sorted(required):
        if name not in params:
            raise ParamError(
                "parameter_missing", f"Missing required param: {path}{name}.", f"{path}{name}"
            )
    for name, value in params.items():
        _check(
            value,
            _unwrap(_resolve(hints[name], schema.__module__)),
            schema.__module__,
            f"{path}{name}",
        )


def _check(value: Any, annotation: Any, module: str, param: str) -> None:
    annotation = _unwrap(_resolve(annotation, module))
    origin = get_origin(annotation)
    if origin is Union or isinstance(annotation, type(int | str)):
        errors = []
        for option in get_args(annotation):
            try:
                _check(value, option, module, param)
                return
            except ParamError as error:
                errors.append(error)
        raise errors[-1]
    if origin is Literal:
        if value not in get_args(annotation):
            allowed = ", ".join(repr(a) for a in get_args(annotation) if a != "")
            raise ParamError(
                "parameter_invalid_string", f"Invalid {param}: must be one of {allowed}", param
            )
        return
    if annotation is bool:
        if value not in ("true", "false"):
            raise ParamError("parameter_invalid_boolean", f"Invalid boolean: {value}", param)
        return
    if annotation is int:
        if not isinstance(value, str) or not _INTEGER.match(value):
            raise ParamError("parameter_invalid_integer", f"Invalid integer: {value}", param)
        return
    if annotation is Decimal:
        try:
            Decimal(value)
        except (InvalidOperation, TypeError) as error:
            raise ParamError(
                "parameter_invalid_string", f"Invalid decimal: {value}", param
            ) from error
        return
    if annotation is str:
        if not isinstance(value, str):
            raise ParamError("parameter_invalid_string", f"Invalid string: {param}", param)
        return
    if origin in (list, typing.List):  # noqa: UP006 - the SDK annotates with typing.List
        if not isinstance(value, list):
            raise ParamError("parameter_invalid_array", f"Invalid array: {param}", param)
        (item,) = get_args(annotation)
        for index, element in enumerate(value):
            _check(element, item, module, f"{param}[{index}]")
        return
    if origin in (dict, dict) or getattr(annotation, "__name__", "") == "UntypedStripeObject":
        if not isinstance(value, dict) or any(not isinstance(v, str) for v in value.values()):
            raise ParamError("parameter_invalid_object", f"Invalid hash: {param}", param)
        return
    if _is_typeddict(annotation):
        if not isinstance(value, dict):
            raise ParamError("parameter_invalid_object", f"Invalid object: {param}", param)
        validate(value, annotation, path=f"{param}.")
        return
    raise ParamError(
        "parameter_invalid", f"Unsupported parameter type for {param}: {annotation!r}", param
    )
