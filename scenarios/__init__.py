"""The reference scenarios, installed with peerlab as package data (``peerlab.scenarios``).

:func:`peerlab.scenario.packaged` finds one by name.
"""
