from dnnlab.cli import main

raise SystemExit(main())
