import sys

from benchbias.cli import main

sys.exit(main())
