"""Modules (composite blocks): definitions stored once per graph, instances by reference.

definition.py  what a definition may hold, checked field by field (untrusted input)
expand.py      the flat graph an instance expands to (ids ``instance/inner``), and the
               analysis of a graph with instances folded back onto its blocks
edit.py        group, ungroup, make unique, expose a setting: the graph edits the app offers

Analysis, the Model and both exports work on the expanded graph, so every layer, check and
export path is the one plain blocks use. (Import the submodules by name: engine.graph imports
definition.py, and the others import engine.graph.)
"""
