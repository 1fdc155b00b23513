import sys

from phiwarden.cli import main

sys.exit(main())
