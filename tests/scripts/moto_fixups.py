"""moto's server, with two deletions moto's CloudFormation lacks (moto 5.2).

Deleting a stack, CloudFormation deletes every resource it created. moto's CloudFormation
cannot delete route tables or network interfaces it created from a template (no
``delete_from_cloudformation_json``), so a stack with its own VPC fails to delete ("The vpc
has dependencies"). This adds the two deletions and then runs ``moto.server`` as usual; nothing
else changes. Used by tests/scripts/conftest.py; docs/infrastructure.md lists it.
"""

from __future__ import annotations

import sys
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.models.route_tables import RouteTable


def _delete_route_table(
    cls: type[RouteTable],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> None:
    backend = ec2_backends[account_id][region_name]
    if resource_name in backend.route_tables:
        backend.route_tables.pop(resource_name)


def _delete_network_interface(
    cls: type[NetworkInterface],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> None:
    backend = ec2_backends[account_id][region_name]
    if resource_name in backend.enis:
        backend.delete_network_interface(resource_name)


def install() -> None:
    RouteTable.delete_from_cloudformation_json = classmethod(_delete_route_table)  # type: ignore[assignment,method-assign]
    NetworkInterface.delete_from_cloudformation_json = classmethod(  # type: ignore[assignment,method-assign]
        _delete_network_interface
    )


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
