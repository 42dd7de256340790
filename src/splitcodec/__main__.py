from splitcodec.cli import main

raise SystemExit(main())
