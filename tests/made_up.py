"""Made-up rows for the tests of every finding's verdict rule (each beside the finding's other tests): every
outcome reachable, and the boundaries (one seed, a CI touching zero, ties, a missing condition, outside the
paper's regime). Per seed a shared offset, which paired designs cancel, and a little noise per condition."""
import numpy as np

NOISE = np.array([0.3, -0.2, 0.1, -0.3, 0.1])
OFFSET = np.array([1.5, -2.0, 0.5, 2.5, -1.0])
