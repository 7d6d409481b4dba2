"""Entry-point tasks: train, evaluate, colorize (each takes a composed Hydra config).

Importing the package registers the project's OmegaConf resolvers (``tcvc.tasks.common``).
"""

from tcvc.tasks import common  # noqa: F401  (registers the resolvers)
