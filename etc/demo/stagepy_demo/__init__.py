# SPDX-License-Identifier: MIT
"""The stage-py demo package: a small tree to stage on any machine.

Importing it tells where it was loaded from, so a job can check that it
runs from node-local memory and not from the shared file system.
"""
import os

from stagepy_demo.greet import greeting

HERE = os.path.dirname(os.path.abspath(__file__))


def where():
    """The directory this package was imported from."""
    return HERE


__all__ = ["greeting", "where"]
