"""activevision: images as partially observable worlds seen through foveated glimpses.

Importing the package registers the Gymnasium ids ``Glimpse*-v0`` (``gym.make("GlimpseSVHN-v0")``).
"""

from activevision.registration import ENV_IDS, register_envs

__version__ = "0.1.0"
__all__ = ["ENV_IDS", "register_envs", "__version__"]

register_envs()
