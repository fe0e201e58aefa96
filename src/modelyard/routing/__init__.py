"""Routing: resolve a public model name to a registered version from an in-memory snapshot."""

from modelyard.registry.protocol import version_name
from modelyard.routing.table import ModelNotRoutable, RoutingTable, Target, route_of

__all__ = ["ModelNotRoutable", "RoutingTable", "Target", "route_of", "version_name"]
