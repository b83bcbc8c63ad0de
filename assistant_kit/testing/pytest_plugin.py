"""pytest plugin (entry point ``pytest11``): collects the conversation tests declared in specs.

The collection hooks arrive with the conversation runner; until then the plugin adds nothing.
"""
