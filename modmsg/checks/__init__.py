"""Checks: plain functions that raise a typed Failure (carrying a requirement id) when a property does not hold.

Every check takes what it judges (a response, a body, the state before and after) and the ``req`` id it
judges for; it never prints or formats reports. Modules are split by requirement area.
"""
