"""Hubble flows as data: parse ``hubble observe`` output, write it back as Hubble does, turn it
into a DataFrame or a service map, and suggest least-privilege policies from it."""

from labkit.errors import FlowError
from labkit.hubble.flow import Flow
from labkit.hubble.log import FlowLog, parse_flows, read_flows
from labkit.hubble.servicemap import ServiceMap
from labkit.hubble.suggest import Suggestion, suggest

__all__ = ["Flow", "FlowError", "FlowLog", "ServiceMap", "Suggestion", "parse_flows",
           "read_flows", "suggest"]
