"""The one exception a user is meant to read: bad configuration or input."""


class ConfigError(ValueError):
    """Invalid user input; the message names the bad key or value and the allowed ones."""
