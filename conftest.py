# The modmsg pytest plugin is registered through the `pytest11` entry point when the package is installed
# (`make setup`); this file only makes it load from a plain source checkout too.
import importlib.metadata

if not any(ep.name == "modmsg" for ep in importlib.metadata.entry_points(group="pytest11")):
    pytest_plugins = ["modmsg.plugin"]
