import sys

from filegate_stack.lambda_endpoint.server import main

sys.exit(main())
