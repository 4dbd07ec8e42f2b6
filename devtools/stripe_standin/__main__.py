import sys

from devtools.stripe_standin.app import main

sys.exit(main())
