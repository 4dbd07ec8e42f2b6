import sys

from devtools.runner import main

sys.exit(main(sys.argv[1:]))
