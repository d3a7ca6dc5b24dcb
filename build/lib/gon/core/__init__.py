"""The bottom layer: errors, the settings every option is written with, and the checks on what comes in.

gon.core.errors    GonError (one line naming the culprit, exit 2) and its kinds
gon.core.settings  Option: a setting's name, type, default, help and bounds; the schema of a constructor
gon.core.validate  capped YAML / JSON reads, finite numbers, memory and size estimates
"""
