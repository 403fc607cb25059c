"""The reference server: the correct ``openai`` profile, plus the knobs that break it on purpose."""

from modmsg.reference.app import create_app
from modmsg.reference.behaviour import DEFAULT_BEHAVIOUR, Behaviour
from modmsg.reference.runner import ReferenceServer, serve_forever, start_server

__all__ = ["DEFAULT_BEHAVIOUR", "Behaviour", "ReferenceServer", "create_app", "serve_forever", "start_server"]
