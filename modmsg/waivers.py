"""The former name of modmsg.deviations, kept while modmsg.plugin still imports it; new code imports deviations."""

from modmsg.deviations import Deviations as Overlay
from modmsg.deviations import DeviationsError as WaiverError
from modmsg.deviations import load_deviations as load_overlay
from modmsg.deviations import parse_deviations as parse_overlay

__all__ = ["Overlay", "WaiverError", "load_overlay", "parse_overlay"]
