import sys

from kd.cli import main

sys.exit(main())
