"""ROS 2 parameters <-> the core's config dataclasses.

Every field of a dataclass becomes a declared parameter with the field's default and its
`metadata["help"]` as description. Values are validated by the dataclass itself, so a node and
the core agree on what is valid and the error names the bad value.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from sdm_policy_core.config import ConfigError, from_dict

T = TypeVar("T")


def declare_dataclass_parameters(node: Node, cls: type[T], prefix: str = "") -> T:
    """Declare one parameter per field of `cls` and return the validated dataclass.

    Raises ConfigError (naming the parameter and value) when the given values are invalid.
    Parameters are dynamically typed so that `-p rate:=20` works for a float field; the
    dataclass converts and range-checks them.
    """
    for f in dataclasses.fields(cls):
        node.declare_parameter(
            prefix + f.name,
            f.default,
            ParameterDescriptor(description=f.metadata.get("help", ""), dynamic_typing=True),
        )
    return dataclass_from_parameters(node, cls, prefix)


def dataclass_from_parameters(
    node: Node, cls: type[T], prefix: str = "", changed: list[Parameter] | None = None
) -> T:
    """Current parameter values (with `changed` applied on top) as a validated `cls`."""
    values: dict[str, Any] = {
        f.name: node.get_parameter(prefix + f.name).value for f in dataclasses.fields(cls)
    }
    for param in changed or []:
        name = param.name[len(prefix) :] if param.name.startswith(prefix) else None
        if name in values:
            values[name] = param.value
    return from_dict(cls, values)


def validating_callback(node: Node, cls: type, prefix: str = ""):
    """An on-set-parameters callback that rejects values the dataclass refuses."""

    def callback(params: list[Parameter]) -> SetParametersResult:
        try:
            dataclass_from_parameters(node, cls, prefix, changed=params)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    return callback
