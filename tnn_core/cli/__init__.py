"""The ``tnn`` command line."""
