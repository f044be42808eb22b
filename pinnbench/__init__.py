"""pinnbench: benchmark conflict-free training methods for physics-informed neural networks."""

__version__ = "0.1.0"
