import sys

from simulator.cli.app import main

sys.exit(main())
