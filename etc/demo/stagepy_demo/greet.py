# SPDX-License-Identifier: MIT
"""Reads a data file beside the module, as real packages do."""
import os


def greeting():
    path = os.path.join(os.path.dirname(__file__), "data", "greeting.txt")
    with open(path, encoding="utf-8") as f:
        return f.read().strip()
