from smart_router.cli import main

raise SystemExit(main())
