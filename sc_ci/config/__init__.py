"""Configuration: the `security:` policy from flags, environment, action inputs and YAML, validated once."""

from sc_ci.config.loader import LoadedConfig, load
from sc_ci.config.model import Feature, SecurityConfig
from sc_ci.config.refs import KeyFile, KeySpec, KeyUri, SecretRef
from sc_ci.config.sources import ACTION_INPUTS, ActionInput, RuntimeSettings

__all__ = [
    "ACTION_INPUTS",
    "ActionInput",
    "Feature",
    "KeyFile",
    "KeySpec",
    "KeyUri",
    "LoadedConfig",
    "RuntimeSettings",
    "SecretRef",
    "SecurityConfig",
    "load",
]
