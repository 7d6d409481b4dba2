"""Entry-point tasks: train, evaluate, colorize (each takes a composed Hydra config).

``tcvc.tasks.config.configure()`` (the entry points call it) prepares what Hydra needs;
``tcvc.tasks.errors`` turns bad input into one line; ``tcvc.tasks.loggers`` builds loggers.
"""
