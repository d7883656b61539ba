# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ROS 2 parameters <-> typed dataclasses: the one way every node of this package declares them.

Each node's parameters are one dataclass (policy_node: `policy_params.PolicyNodeParameters`,
sim_bridge_node and sim_eval_driver: theirs). Every field becomes a declared parameter with the
field's default and its `metadata["help"]` as description; `metadata["read_only"]` makes it
settable at start only; `metadata["choices"]` lists the valid values (checked before the types, so
`autostart:=true` reads "autostart must be one of [...]"). Values are validated by the dataclass
itself (types by `from_dict`, ranges by its `__post_init__`), so a node and the core agree on what
is valid and the error names the bad parameter and value. Write fields with `parameter(...)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from sdm_policy_core.config import ConfigError, from_dict

T = TypeVar("T")


def parameter(
    default: Any, help: str, *, read_only: bool = False, choices: Sequence[Any] | None = None
) -> Any:
    """Make a dataclass field that is a node parameter (a list default is copied per instance)."""
    metadata = {"help": help, "read_only": read_only, "choices": choices}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def declare_dataclass_parameters(
    node: Node, cls: type[T], prefix: str = "", read_only: bool = False
) -> T:
    """Declare one parameter per field of `cls` and return the validated dataclass.

    Raises ConfigError (naming the parameter and value) when the given values are invalid.
    Parameters are dynamically typed so that `-p rate:=20` works for a float field; the
    dataclass converts and range-checks them. `read_only`: every field is (else those whose
    metadata say so).
    """
    for f in dataclasses.fields(cls):
        node.declare_parameter(
            prefix + f.name,
            _default(f),
            ParameterDescriptor(
                description=f.metadata.get("help", ""),
                read_only=read_only or bool(f.metadata.get("read_only", False)),
                dynamic_typing=True,
            ),
        )
    return dataclass_from_parameters(node, cls, prefix)


def dataclass_from_parameters(
    node: Node, cls: type[T], prefix: str = "", changed: list[Parameter] | None = None
) -> T:
    """Return the current parameter values (with `changed` applied on top) as a validated `cls`."""
    fields = dataclasses.fields(cls)
    values: dict[str, Any] = {f.name: node.get_parameter(prefix + f.name).value for f in fields}
    for param in changed or []:
        name = param.name[len(prefix) :] if param.name.startswith(prefix) else None
        if name in values:
            values[name] = param.value
    for f in fields:
        choices = f.metadata.get("choices")
        if choices is not None and values[f.name] not in choices:
            raise ConfigError(
                f"{prefix}{f.name} must be one of {list(choices)}, got {values[f.name]!r}"
            )
    return from_dict(cls, values)


def validating_callback(node: Node, cls: type, prefix: str = ""):
    """Return an on-set-parameters callback that rejects values the dataclass refuses."""

    def callback(params: list[Parameter]) -> SetParametersResult:
        try:
            dataclass_from_parameters(node, cls, prefix, changed=params)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    return callback
