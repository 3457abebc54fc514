"""Vigie probes: targets, the read-only guard, HTTP and browser probes, observations.

A probe observes; it never writes to the site it watches (only GET and HEAD leave it).
"""
