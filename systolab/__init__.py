"""systolab: design, verify and price custom matmul accelerators against Nvidia GPUs."""
from .config import AcceleratorConfig
from .errors import ConfigError, UserError

__version__ = "0.1.0"
__all__ = ["AcceleratorConfig", "ConfigError", "UserError", "__version__"]
