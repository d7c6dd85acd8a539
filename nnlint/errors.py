"""The error a bad configuration raises, below both readers of the configuration: nnlint.config
(`[tool.nnlint]`) and nnlint.confirm.settings (`[tool.nnlint.confirm]`, `[tool.nnlint.models]`)."""


class ConfigError(Exception):
    """A problem in the user's configuration or options; reported with exit code 2."""
