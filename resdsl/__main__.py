from resdsl.cli import main

raise SystemExit(main())
